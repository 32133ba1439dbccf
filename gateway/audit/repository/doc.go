// Package repository is the PostgreSQL audit repository that every gateway
// replica ships its audit records to, so that auditors search one trail
// and a replica's disk is not the only copy of its records.
//
// The schema lives in migrations/ (embedded, applied by goose under its
// PostgreSQL advisory lock, so replicas starting together migrate once).
// audit_records holds each replica's hash-chained records byte for byte,
// keyed by (instance, seq) and by the AuditEvent id, with the auditor's
// search keys (patient, agents, purposes, outcome, country, operation,
// break-the-glass, trace id, recorded) in indexed columns. The table is
// append-only: a trigger refuses UPDATE, DELETE and TRUNCATE, and the
// gateway's role mhg_gateway is granted SELECT and INSERT alone.
//
// Insert is idempotent (ON CONFLICT DO NOTHING on the record), so a
// shipper may send a batch again after a crash; a record that conflicts
// with a different one already stored is refused with ErrConflict. Search
// answers the same audit.Query as the local log's index.
//
// The package does not read the local log; the shipper does (Shipper).
package repository
