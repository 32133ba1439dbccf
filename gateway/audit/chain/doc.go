// Package chain is the audit log's on-disk format: one JSON line per
// record, each carrying the SHA-256 of the previous one, so that a changed,
// removed, inserted or reordered record breaks the chain where it happened.
// It seals new records, parses and verifies existing ones, and names the
// first broken record. It depends on the standard library only, so the
// verifier can be audited and built on its own; package audit writes the
// records and renders the AuditEvents inside them.
package chain
