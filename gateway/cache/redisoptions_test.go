package cache

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestRedisTopologies(t *testing.T) {
	cases := []struct {
		name  string
		redis RedisOptions
		want  string
	}{
		{"sentinel", RedisOptions{Addrs: []string{"127.0.0.1:1", "127.0.0.1:2"}, MasterName: "mymaster"}, "*redis.Client"},
		{"cluster", RedisOptions{Addrs: []string{"127.0.0.1:1", "127.0.0.1:2"}}, "*redis.ClusterClient"},
		{"cluster with one seed", RedisOptions{Addrs: []string{"127.0.0.1:1"}}, "*redis.ClusterClient"},
		{"cluster with url credentials", RedisOptions{URL: "redis://u:pw@127.0.0.1:1/0", Addrs: []string{"127.0.0.1:1"}}, "*redis.ClusterClient"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.redis
			opts.NoTelemetry = true
			s, err := NewRedisStore(opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			got := typeName(s.Client())
			if got != tc.want {
				t.Errorf("client = %s, want %s", got, tc.want)
			}
			// Nothing listens there: the cache must load, not fail.
			c := newCache(t, s, func(o *Options) { o.Breaker.Failures = 1 })
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if v, err := c.Fetch(ctx, resKey("de", "a"), false, newRecorder("v").load); err != nil || string(v) != "v" {
				t.Fatalf("Fetch = %q, %v", v, err)
			}
			if !c.Degraded() {
				t.Error("not degraded with no Redis listening")
			}
		})
	}
}

// Bad options are refused with an error that names them and never quotes
// a Redis URL, which may hold a password.
func TestStoreOptionErrors(t *testing.T) {
	cases := []struct {
		name string
		open func() error
		want string
		not  string
	}{
		{"bad redis url", func() error {
			_, err := NewRedisStore(RedisOptions{URL: "redis://user:s3cret@127.0.0.1:x/0"})
			return err
		}, "not a valid", "s3cret"},
		{"negative timeout", func() error {
			_, err := NewRedisStore(RedisOptions{URL: "redis://127.0.0.1:1", Timeout: -1})
			return err
		}, "timeout", ""},
		{"neither url nor addrs", func() error {
			_, err := NewRedisStore(RedisOptions{})
			return err
		}, "neither url nor addrs", ""},
		{"negative max bytes", func() error {
			_, err := NewMemoryStore(MemoryOptions{MaxBytes: -1})
			return err
		}, "max bytes", ""},
		{"missing key file", func() error {
			_, err := LoadKeys("testdata/keys/none.json")
			return err
		}, "none.json", ""},
		{"bad key file", func() error {
			_, err := LoadKeys("testdata/keys/short-hmac.bad.json")
			return err
		}, "hmac: want 32 bytes", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.open()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to say %q", err, tc.want)
			}
			if tc.not != "" && strings.Contains(err.Error(), tc.not) {
				t.Fatalf("err = %v quotes %q", err, tc.not)
			}
		})
	}
}

func typeName(v any) string {
	switch v.(type) {
	case *redis.Client:
		return "*redis.Client"
	case *redis.ClusterClient:
		return "*redis.ClusterClient"
	default:
		return "other"
	}
}
