// Package scaleout holds the multi-replica integration test (TestScaleOut):
// three `mhg serve` processes sharing a Redis and a PostgreSQL audit
// repository under mixed load, one replica killed and restarted, the
// database restarted, and then one audit truth: every answer the clients
// saw has exactly one AuditEvent, the repository verifies, every replica's
// auditor search agrees, and a cache purge on one replica reaches the
// others. It has no code of its own.
package scaleout
