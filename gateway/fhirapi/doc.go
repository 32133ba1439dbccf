// Package fhirapi is the gateway's HTTP surface: the Gin routes of the FHIR
// R4 REST API under /fhir, health and readiness, content negotiation,
// search-parameter parsing, Bundles and the one place where errors become
// OperationOutcomes with the right status (Listener extends that to the
// few answers Go's HTTP server gives before any handler runs).
//
// POST $to-mhp converts what the client sends, within ToMHPLimits: a
// Bundle streams through spool files entry by entry, so a request costs
// disk, not memory.
//
// {DocumentReference,DiagnosticReport}/{id}/$attachment is the one route
// whose answer is not FHIR JSON: the bytes of one attachment, read through
// federate.Service.Attachment (the same decisions as a read) and bounded
// by Options.MaxAttachmentBytes. Every resource rendered here has its
// attachment urls completed to that route (federate.RouteAttachments).
//
// Clinical search criteria and _sort are package search's: parseSearch
// hands it the parameters it does not read itself, and search evaluates
// them on the released resources before the page is cut; the
// CapabilityStatement lists the same definitions.
//
// It holds no business logic: who may see what is federate's and authz's,
// and this package only turns HTTP into requests to them and their results
// back into FHIR JSON.
package fhirapi
