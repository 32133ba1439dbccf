// Package server assembles a gateway from a validated configuration:
// telemetry, national sources, mappings, the policy engine, the cache, the
// audit log, federation and the HTTP handler; it serves them with timeouts
// and shuts down gracefully, finishing requests in flight. `mhg serve` and
// the end-to-end tests both build gateways through it.
//
// It is the one place where the configuration meets the components: each
// section becomes the Options of the package it configures (options.go
// holds the translations that are more than copying fields; AuthOptions and
// RedisOptions are exported for the commands that mint tokens and purge the
// cache), and New runs the steps that build the components in order. No
// component package imports gateway/config.
package server
