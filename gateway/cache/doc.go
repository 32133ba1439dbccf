// Package cache is the gateway's read-through cache of mapped FHIR data:
// one Cache type over a Store, either Redis (RedisStore, a go-redis
// UniversalClient: standalone, Sentinel or Cluster) or in-process
// (MemoryStore, on otter). Keys are keyed hashes and values are sealed
// with AES-256-GCM, so the store never holds an identifier or a clear
// value; TTLs are per kind, "absent" answers are kept briefly, concurrent
// misses share one load, and a failing Redis is skipped by a breaker
// rather than failing requests. Values are purged by source or by tag.
// With several replicas over one Redis, a NearStore keeps a short-lived
// in-process copy in front of it, and every deletion is published on a
// Redis channel that empties every replica's copy (forget-patient,
// consent changes and purges reach all replicas).
//
// Bytes is a separate, smaller piece: a bounded in-process cache of
// renderings (the JSON of a released resource, a rendered $summary
// document) under the SHA-256 of what they were rendered from, used by
// fhirapi and federate.
//
// It stores bytes; what the bytes mean (binary protos) is the caller's
// business. Policy decisions are never cached here. Constructors take
// options structs (Options, RedisOptions, MemoryOptions, NearOptions), not
// the gateway's configuration: the server translates the cache and redis
// sections into them. README.md documents
// the key layout, the key file and why otter.
package cache
