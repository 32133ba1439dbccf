// Package audit records every request that touches patient data as a FHIR
// R4 AuditEvent in an append-only, hash-chained log, verifies such logs, and
// answers auditors' searches over them.
package audit
