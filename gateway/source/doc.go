// Package source holds the connectors to national EHR sources: a FHIR REST
// client (timeouts, retries of idempotent GETs, a circuit breaker, response
// limits, paging) and a bundle source that serves resources from Bundle and
// NDJSON files. Both validate what they return with the R4 codec, so invalid
// upstream data is reported, never passed on. Open turns one configured
// source into a connector; mapping, policy, caching and identity resolution
// across sources happen in the layers above.
//
// Errors wrap the sentinels in resource.go (ErrNotFound, ErrUnavailable,
// ErrTimeout, ErrInvalidResponse, ErrRejected, ErrTruncated, ErrNextLink;
// a search that stopped early returns what it read with a PartialError)
// and never hold a URL query string, a resource id or resource content, so
// they are safe to log. A next link written with another host name for
// the same base (an alias, a proxy) is rebased onto the configured base;
// no request ever goes to another server.
package source
