-- Signed checkpoints of each replica's Merkle tree, append-only.

-- +goose Up
CREATE TABLE audit_checkpoints (
    instance   text        NOT NULL,
    -- tree_size is how many of the replica's records (seq 1..tree_size)
    -- the tree holds; root_hash its RFC 6962 root (hex).
    tree_size  bigint      NOT NULL CHECK (tree_size > 0),
    root_hash  text        NOT NULL,
    -- note is the signed checkpoint (golang.org/x/mod/sumdb/note): origin
    -- line, tree size, base64 root, then the signature lines.
    note       text        NOT NULL,
    -- frontier is the compact range of the tree (hex node hashes), so a
    -- restarted replica continues its tree without reading every record.
    -- Verification never trusts it.
    frontier   text[]      NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (instance, tree_size)
);

CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
REVOKE ALL ON audit_checkpoints FROM PUBLIC;
GRANT SELECT, INSERT ON audit_checkpoints TO mhg_gateway;

-- +goose Down
DROP TABLE audit_checkpoints;
