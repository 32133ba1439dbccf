-- The audit repository: every replica's hash-chained records, append-only.

-- +goose Up
CREATE TABLE audit_records (
    -- instance names the replica whose chain the record belongs to; seq
    -- numbers its records from 1, as in the replica's local log.
    instance    text        NOT NULL,
    seq         bigint      NOT NULL CHECK (seq > 0),
    -- id is the AuditEvent id (a UUID): the record id shipping is
    -- idempotent on.
    id          text        NOT NULL UNIQUE,
    -- time, prev, hash and event are the chain record byte for byte, so
    -- the chain verifies from the repository alone.
    time        text        NOT NULL,
    prev        text        NOT NULL,
    hash        text        NOT NULL,
    event       text        NOT NULL,
    -- The auditor's search keys (IHE ITI-81), read from the event.
    recorded    timestamptz NOT NULL,
    patient     text,
    -- agent= matches the requester's client id or organisation.
    agent_client text,
    agent_org   text,
    purposes    text[]      NOT NULL DEFAULT '{}',
    outcome     text,
    country     text,
    operation   text,
    break_glass boolean     NOT NULL DEFAULT false,
    trace_id    text,
    shipped_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (instance, seq)
);

CREATE INDEX audit_records_recorded ON audit_records (recorded DESC);
CREATE INDEX audit_records_patient ON audit_records (patient, recorded DESC) WHERE patient IS NOT NULL;
CREATE INDEX audit_records_agent_client ON audit_records (agent_client, recorded DESC);
CREATE INDEX audit_records_agent_org ON audit_records (agent_org, recorded DESC);
CREATE INDEX audit_records_purposes ON audit_records USING gin (purposes);
CREATE INDEX audit_records_outcome ON audit_records (outcome, recorded DESC);
CREATE INDEX audit_records_operation ON audit_records (operation, recorded DESC) WHERE operation IS NOT NULL;
CREATE INDEX audit_records_break_glass ON audit_records (recorded DESC) WHERE break_glass;
CREATE INDEX audit_records_trace ON audit_records (trace_id) WHERE trace_id IS NOT NULL;

-- Append-only whoever connects: a trigger refuses every UPDATE, DELETE and
-- TRUNCATE (only a superuser who disables it can change the table, which
-- the hash chain and the signed checkpoints then show).
-- +goose StatementBegin
CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit repository is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
-- +goose StatementEnd

CREATE TRIGGER audit_records_append_only BEFORE UPDATE OR DELETE ON audit_records
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

-- The gateway's database role may read and append, nothing else. Roles are
-- shared by the cluster's databases, so it may exist already.
-- +goose StatementBegin
DO $$
BEGIN
    CREATE ROLE mhg_gateway NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;
-- +goose StatementEnd
REVOKE ALL ON audit_records FROM PUBLIC;
GRANT SELECT, INSERT ON audit_records TO mhg_gateway;

-- +goose Down
DROP TABLE audit_records;
DROP FUNCTION audit_refuse_change();
