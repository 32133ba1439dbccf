// Package fhirapi is the gateway's HTTP surface: the Gin routes of the FHIR
// R4 REST API under /fhir, health and readiness, content negotiation,
// search-parameter parsing, Bundles and the one place where errors become
// OperationOutcomes with the right status.
//
// It holds no business logic: who may see what is federate's and authz's,
// and this package only turns HTTP into requests to them and their results
// back into FHIR JSON.
package fhirapi
