// Package source holds the connectors to national EHR sources: a FHIR REST
// client (timeouts, retries of idempotent GETs, a circuit breaker, response
// limits, paging) and a bundle source that serves resources from Bundle and
// NDJSON files. Both validate what they return with the R4 codec, so invalid
// upstream data is reported, never passed on. Mapping and policy happen
// elsewhere.
package source
