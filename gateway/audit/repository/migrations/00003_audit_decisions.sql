-- Every replica's policy decision log (OPA decision log entries), for the
-- policy workbench's impact analysis across replicas. Append-only.

-- +goose Up
CREATE TABLE audit_decisions (
    decision_id text        PRIMARY KEY,
    instance    text        NOT NULL,
    decided_at  timestamptz NOT NULL,
    revision    text        NOT NULL,
    -- entry is the decision log line as the replica wrote it (its input
    -- carries no patient data; consent ids are erased).
    entry       text        NOT NULL,
    shipped_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX audit_decisions_decided_at ON audit_decisions (decided_at);

CREATE TRIGGER audit_decisions_append_only BEFORE UPDATE OR DELETE ON audit_decisions
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_decisions_no_truncate BEFORE TRUNCATE ON audit_decisions
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
REVOKE ALL ON audit_decisions FROM PUBLIC;
GRANT SELECT, INSERT ON audit_decisions TO mhg_gateway;

-- +goose Down
DROP TABLE audit_decisions;
