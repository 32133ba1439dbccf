package server

import (
	"testing"

	"github.com/migrant-health/mhg/gateway/internal/redistest"
)

// redisURL returns REDIS_URL when set, else the URL of a redis-server of
// the test's own.
func redisURL(t testing.TB) string {
	t.Helper()
	return redistest.URL(t)
}

// startRedis starts a redis-server for one test, stopped at cleanup.
func startRedis(t testing.TB) *redistest.Server {
	t.Helper()
	return redistest.Run(t, false)
}
