// Package repository is the PostgreSQL audit repository that every gateway
// replica ships its audit records to, so that auditors search one trail,
// a replica's disk is not the only copy of its records, and a cut tail is
// detectable.
//
// The schema lives in migrations/ (embedded, applied by goose under its
// PostgreSQL advisory lock, so replicas starting together migrate once).
// audit_records holds each replica's hash-chained records byte for byte,
// keyed by (instance, seq) and by the AuditEvent id, with the auditor's
// search keys (patient, requester client and organisation, purposes,
// outcome, country, operation, break-the-glass, trace id, recorded) in
// indexed columns. Every table is append-only: a trigger refuses UPDATE,
// DELETE and TRUNCATE, and the gateway's role mhg_gateway is granted
// SELECT and INSERT alone.
//
// Shipper ships a replica's local log (its spool) in seq order, at least
// once, from a checkpoint saved beside the log, never past what the log
// acknowledged; Insert is idempotent (ON CONFLICT DO NOTHING) and refuses
// a different record under a stored seq or id (ErrConflict). Past a bound
// of waiting records the Shipper's Gate fails, and the gateway with it.
// Search answers the same audit.Query as the local log's index.
//
// Checkpointer keeps a Merkle tree (RFC 6962, transparency-dev/merkle) per
// replica over its records and signs checkpoints of it (signed notes,
// golang.org/x/mod/sumdb/note), stored in audit_checkpoints and optionally
// appended to a file a second party keeps. Verify checks every chain,
// each checkpoint's signature and root, and consistency proofs between
// successive checkpoints, and names the first record or checkpoint at
// fault.
//
// The policy decision log goes to audit_decisions (DecisionShipper); the
// Repository reads it back as the console's DecisionLog.
package repository
