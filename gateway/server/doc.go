// Package server assembles a gateway from a validated configuration:
// telemetry, national sources, mappings, the policy engine, the cache, the
// audit log, federation and the HTTP handler; it serves them with timeouts
// and shuts down gracefully, finishing requests in flight. `mhg serve` and
// the end-to-end tests both build gateways through it.
package server
