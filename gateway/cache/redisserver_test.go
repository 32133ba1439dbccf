package cache

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/migrant-health/mhg/gateway/internal/redistest"
)

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// sharedRedis is the server TestMain started (or REDIS_URL) for the tests
// that do not need to kill theirs.
var sharedRedis struct {
	url string
	srv *redistest.Server
	err error
	dir string
}

func TestMain(m *testing.M) {
	// go-redis logs every failed dial; the fault tests cause many on purpose.
	redis.SetLogger(quietLogger{})
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "mhg-cache-redis-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	sharedRedis.dir = dir
	if u := os.Getenv("REDIS_URL"); u != "" {
		sharedRedis.url = u
	} else if srv, err := redistest.New(dir, 0, false); err != nil {
		sharedRedis.err = err
	} else {
		sharedRedis.srv, sharedRedis.url = srv, srv.URL()
		defer srv.Kill()
	}
	return m.Run()
}

// needRedisURL returns the shared Redis or fails the test: CI provides
// redis-server, so its absence is a failure, not a skip.
func needRedisURL(tb testing.TB) string {
	tb.Helper()
	if sharedRedis.err != nil {
		tb.Fatalf("shared Redis: %v", sharedRedis.err)
	}
	return sharedRedis.url
}

// ownRedis starts a redis-server for one test, killed at cleanup.
func ownRedis(tb testing.TB, cluster bool) *redistest.Server {
	tb.Helper()
	return redistest.Run(tb, cluster)
}
