// Package cache is the gateway's read-through cache of mapped FHIR data:
// one Cache type over a Redis store (go-redis UniversalClient) or an
// in-process store, with keyed-hash keys, encrypted values, per-kind TTLs,
// negative entries, singleflight and purge by source or tag.
//
// It stores bytes; what the bytes mean (binary protos) is the caller's
// business. Policy decisions are never cached here.
package cache
