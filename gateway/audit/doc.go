// Package audit records every request that touches patient data as a FHIR
// R4 AuditEvent in an append-only, hash-chained log, verifies such logs, and
// answers auditors' searches over them.
//
// Render turns an Entry into an AuditEvent shaped as the IHE Basic Audit Log
// Patterns shape a RESTful interaction: type rest, subtype the FHIR
// interaction, action R or E, outcome 0/4/8, the requesting client and the
// gateway as agents, the purpose of use, and entities for the patient
// (Patient/<gateway id>), each source contacted, each policy decision (id,
// phase, verdict, rule ids, policy revision, break-glass) and the trace (a
// BALP "XrequestId" entity whose identifier and "trace-id" detail hold the
// W3C trace id, the same id the response's traceparent carries).
//
// Log appends one JSON line per record: {"seq","time","prev","hash",
// "event"}, where hash is the SHA-256 of the record without its hash and
// prev the previous record's hash, fsyncs it before Record returns, and
// continues the chain across restarts. A record that cannot be written is
// an error wrapping ErrUnavailable, and the caller must not release data;
// Check fails from then on, probing the file until writes work again, so
// readiness follows the log.
// Verify checks a log and names the first broken record. An optional Redis
// Stream receives a copy of every record, which also anchors the head of
// the chain outside the file. Search answers auditors' queries from an
// in-memory index built when the log is opened; KeysOf gives that index
// and the PostgreSQL repository (package repository, to which replicas
// ship their logs) the same search keys. A record written while the log is
// open is indexed with the same keys taken from the event as it is built,
// so the request's path does not parse its own JSON back.
package audit
