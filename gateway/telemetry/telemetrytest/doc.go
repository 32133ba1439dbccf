// Package telemetrytest holds test helpers for proving that telemetry
// carries no patient data: a Harness that sets up telemetry with an
// in-memory span exporter, a captured JSON log and the Prometheus handler,
// ScanForPHI that searches all three for given strings, and Needles that
// pulls those strings (names, identifiers, birth dates, addresses, ids) out
// of FHIR fixtures. It is imported by tests only.
package telemetrytest
