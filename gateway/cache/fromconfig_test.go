package cache

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/migrant-health/mhg/gateway/config"
)

func TestFromConfig(t *testing.T) {
	cases := []struct {
		name      string
		mod       func(*config.Config)
		check     func(t *testing.T, c *Cache)
		wantCalls int64 // loads after two Fetches of one key
	}{
		{
			name: "default is in-process",
			check: func(t *testing.T, c *Cache) {
				if _, ok := c.store.(*MemoryStore); !ok {
					t.Errorf("store = %T, want *MemoryStore", c.store)
				}
			},
			wantCalls: 1,
		},
		{
			name:      "disabled is pass-through",
			mod:       func(c *config.Config) { c.Cache.Disabled = true },
			check:     func(t *testing.T, c *Cache) {},
			wantCalls: 2,
		},
		{
			name: "redis url is standalone",
			mod:  func(c *config.Config) { c.Redis.URL = needRedisURL(t) },
			check: func(t *testing.T, c *Cache) {
				rs, ok := c.store.(*RedisStore)
				if !ok {
					t.Fatalf("store = %T, want *RedisStore", c.store)
				}
				if _, ok := rs.Client().(*redis.Client); !ok {
					t.Errorf("client = %T, want *redis.Client", rs.Client())
				}
			},
			wantCalls: 1,
		},
		{
			name: "key file",
			mod:  func(c *config.Config) { c.Cache.KeyFile = "testdata/keys/rotated.good.json" },
			check: func(t *testing.T, c *Cache) {
				if c.seal.write.ID != "2026-11" {
					t.Errorf("sealing key = %q, want the file's first", c.seal.write.ID)
				}
			},
			wantCalls: 1,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			if tc.mod != nil {
				tc.mod(&cfg)
			}
			c, err := FromConfig(cfg.Cache, cfg.Redis, Options{Namespace: "fromconfig", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
			tc.check(t, c)
			r := newRecorder("v")
			k := resKey("de", tc.name[:3])
			for range 2 {
				mustFetch(t, c, k, false, r, "v")
			}
			wantCalls(t, r, tc.wantCalls)
			if c.Degraded() {
				t.Error("degraded")
			}
		})
	}
}

func TestFromConfigRedisTopologies(t *testing.T) {
	cases := []struct {
		name  string
		redis config.Redis
		want  string
	}{
		{"sentinel", config.Redis{Addrs: []string{"127.0.0.1:1", "127.0.0.1:2"}, MasterName: "mymaster"}, "*redis.Client"},
		{"cluster", config.Redis{Addrs: []string{"127.0.0.1:1", "127.0.0.1:2"}}, "*redis.ClusterClient"},
		{"cluster with one seed", config.Redis{Addrs: []string{"127.0.0.1:1"}}, "*redis.ClusterClient"},
		{"cluster with url credentials", config.Redis{URL: "redis://u:pw@127.0.0.1:1/0", Addrs: []string{"127.0.0.1:1"}}, "*redis.ClusterClient"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewRedisStore(tc.redis, RedisOptions{NoTelemetry: true})
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

func TestFromConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*config.Config)
		want string
		not  string
	}{
		{"missing key file", func(c *config.Config) { c.Cache.KeyFile = "testdata/keys/none.json" }, "cache.key_file", ""},
		{"bad key file", func(c *config.Config) { c.Cache.KeyFile = "testdata/keys/short-hmac.bad.json" }, "hmac: want 32 bytes", ""},
		{"bad redis url", func(c *config.Config) { c.Redis.URL = "redis://user:s3cret@127.0.0.1:x/0" }, "not a valid", "s3cret"},
		{"negative timeout", func(c *config.Config) { c.Redis.URL = "redis://127.0.0.1:1"; c.Redis.Timeout = -1 }, "timeout", ""},
		{"negative max bytes", func(c *config.Config) { c.Cache.MaxBytes = -1 }, "max bytes", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			tc.mod(&cfg)
			_, err := FromConfig(cfg.Cache, cfg.Redis, Options{})
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
