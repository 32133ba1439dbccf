package cache

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// fakeClock is a settable clock for the memory store.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

var memoryHarness = harness{
	name: "memory",
	open: func(t *testing.T) (Store, func(time.Duration)) {
		clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
		s, err := NewMemoryStore(MemoryOptions{MaxBytes: 1 << 20, Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s, clock.Advance
	},
	dump: func(t *testing.T, s Store) map[string][]byte {
		out := map[string][]byte{}
		for name, e := range s.(*MemoryStore).c.All() {
			out[name] = e.value
			for _, tag := range e.tags {
				out[tag] = append(out[tag], name...)
			}
		}
		return out
	},
}

// redisHarness runs the suite against a Redis built from the options cfg gives by
// NewRedisStore, as the gateway does.
func redisHarness(name string, cfg func(t *testing.T) RedisOptions) harness {
	return harness{
		name: name,
		open: func(t *testing.T) (Store, func(time.Duration)) {
			s, err := NewRedisStore(cfg(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s, time.Sleep
		},
		dump: func(t *testing.T, s Store) map[string][]byte {
			t.Helper()
			rs := s.(*RedisStore)
			var mu sync.Mutex
			out := map[string][]byte{}
			err := rs.forEachMaster(context.Background(), func(ctx context.Context, c redis.Cmdable) error {
				iter := c.Scan(ctx, 0, "*", 1000).Iterator()
				for iter.Next(ctx) {
					name := iter.Val()
					var v []byte
					switch typ := c.Type(ctx, name).Val(); typ {
					case "string":
						v, _ = c.Get(ctx, name).Bytes()
					case "set":
						v = []byte(strings.Join(c.SMembers(ctx, name).Val(), "\n"))
					case "none":
						continue // expired since SCAN saw it
					default:
						t.Errorf("unexpected Redis type %q", typ)
					}
					mu.Lock()
					out[name] = v
					mu.Unlock()
				}
				return iter.Err()
			})
			if err != nil {
				t.Fatal(err)
			}
			return out
		},
	}
}

// suiteRedisTimeout is generous: the suite checks behaviour, and a 100-way
// burst on a busy CI machine must not time out into extra loads. The fault
// tests check the short production timeout.
const suiteRedisTimeout = 5 * time.Second

func TestMemoryStoreSuite(t *testing.T) {
	runSuite(t, memoryHarness)
}

func TestRedisStoreSuite(t *testing.T) {
	runSuite(t, redisHarness("redis", func(t *testing.T) RedisOptions {
		return RedisOptions{URL: needRedisURL(t), Timeout: suiteRedisTimeout}
	}))
}

// TestRedisClusterStoreSuite runs the suite on a one-node cluster, where
// Redis refuses multi-key commands across hash slots just as a real
// cluster does.
func TestRedisClusterStoreSuite(t *testing.T) {
	srv := ownRedis(t, true)
	runSuite(t, redisHarness("redis-cluster", func(t *testing.T) RedisOptions {
		return RedisOptions{Addrs: []string{srv.Addr()}, Timeout: suiteRedisTimeout}
	}))
}

// TestRedisTagIndexOutlivesMembers: a short-lived member must not shorten
// the index that a consent purge needs to find a long-lived one. The short
// member lives 10s, well past the test even on a loaded machine (at 100ms
// it could expire before DeleteTag counted it), and well short of the
// minute the index must keep.
func TestRedisTagIndexOutlivesMembers(t *testing.T) {
	s, err := NewRedisStore(RedisOptions{URL: needRedisURL(t), Timeout: time.Second, NoTelemetry: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	tag := "tagttl:idx"
	steps := []struct {
		name string
		ttl  time.Duration
	}{{"tagttl:long", time.Minute}, {"tagttl:short", 10 * time.Second}}
	for _, st := range steps {
		if err := s.Set(ctx, st.name, []byte("v"), st.ttl, []string{tag}); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.Client().PTTL(ctx, tag).Val(); got < time.Minute {
		t.Fatalf("tag index TTL = %v, want at least the longest member's (1m)", got)
	}
	if n, err := s.DeleteTag(ctx, tag); err != nil || n != 2 {
		t.Fatalf("DeleteTag = %d, %v; want 2", n, err)
	}
	if n := s.Client().Exists(ctx, tag, "tagttl:long").Val(); n != 0 {
		t.Fatalf("%d keys left after DeleteTag", n)
	}
}
