// Package source holds the connectors to national EHR sources: a FHIR REST
// client (timeouts, retries of idempotent GETs, a circuit breaker, response
// limits, paging) and a bundle source that serves resources from Bundle and
// NDJSON files. Both validate what they return with the R4 codec, so invalid
// upstream data is reported, never passed on. Open turns the Options of one
// source into a connector; it does not read the gateway's configuration
// (the server translates each configured source into Options). Mapping,
// policy, caching and identity resolution across sources happen in the
// layers above.
//
// A search answer with some resources that are not valid R4 is served
// without them (ErrDropped beside the rest); only an answer with nothing
// valid is invalid.
//
// A source that throttles (429, or 503 with Retry-After) is waited for
// within the call's deadline, apart from the configured retries, and never
// counts as a circuit-breaker failure; a per-source token bucket
// (Options.RateLimit) keeps the gateway from causing the throttling.
//
// Errors wrap the sentinels in resource.go (ErrNotFound, ErrUnavailable,
// ErrTimeout, ErrInvalidResponse, ErrRejected, ErrTruncated, ErrNextLink,
// ErrThrottled, ErrDropped; a search that stopped early returns what it read
// with a PartialError) and never hold a URL query string, a resource id or
// resource content, so they are safe to log. A next link written with
// another host name for the same base (an alias, a proxy) is rebased onto
// the configured base; no request ever goes to another server.
package source
