package cache

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// nearPair opens two replicas' NearStores over one Redis, each with its
// own client, as two gateway processes would; invalidated receives a value
// each time b's copy is emptied.
func nearPair(t *testing.T, ttl time.Duration) (a, b *NearStore, raw *redis.Client, invalidated chan time.Time) {
	t.Helper()
	url := needRedisURL(t)
	invalidated = make(chan time.Time, 1024)
	open := func(hook func()) *NearStore {
		rs, err := NewRedisStore(RedisOptions{URL: url, Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n, err := NewNearStore(ctx, rs, NearOptions{Client: rs.Client(), TTL: ttl, Channel: "test:" + t.Name(), Invalidated: hook})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		return n
	}
	a = open(nil)
	b = open(func() { invalidated <- time.Now() })
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	raw = redis.NewClient(opts)
	t.Cleanup(func() { raw.Close() })
	return a, b, raw, invalidated
}

func TestNearStoreInvalidation(t *testing.T) {
	a, b, raw, invalidated := nearPair(t, time.Minute)
	ctx := context.Background()
	name := "near-" + fmt.Sprint(time.Now().UnixNano())
	if err := a.Set(ctx, name, []byte("v1"), time.Minute, []string{"patient:x"}); err != nil {
		t.Fatal(err)
	}
	if v, err := b.Get(ctx, name); err != nil || string(v) != "v1" {
		t.Fatalf("b reads %q, %v", v, err)
	}
	// b answers from its copy: removed from Redis behind its back, the
	// entry is still there for b.
	if err := raw.Del(ctx, name).Err(); err != nil {
		t.Fatal(err)
	}
	if v, _ := b.Get(ctx, name); string(v) != "v1" {
		t.Fatalf("b's copy: %q", v)
	}
	// A forget-patient on a (DeleteTag) empties b's copy too.
	if err := a.Set(ctx, name, []byte("v2"), time.Minute, []string{"patient:x"}); err != nil {
		t.Fatal(err)
	}
	drain(invalidated)
	if _, err := a.DeleteTag(ctx, "patient:x"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-invalidated:
	case <-time.After(30 * time.Second):
		t.Fatal("b never heard of the deletion")
	}
	if v, err := b.Get(ctx, name); err != nil || v != nil {
		t.Fatalf("after a's forget, b reads %q, %v", v, err)
	}
	// Reads through GetMany fill the copy too, and the deleting replica
	// empties its own copy at once.
	if err := a.Set(ctx, name, []byte("v3"), time.Minute, nil); err != nil {
		t.Fatal(err)
	}
	if vs, err := a.GetMany(ctx, []string{name, name + "-absent"}); err != nil || string(vs[0]) != "v3" || vs[1] != nil {
		t.Fatalf("GetMany: %q %v", vs, err)
	}
	if err := a.Delete(ctx, name); err != nil {
		t.Fatal(err)
	}
	if v, _ := a.Get(ctx, name); v != nil {
		t.Fatalf("a's own copy after Delete: %q", v)
	}
}

// TestNearStoreInvalidationBound measures how long a deletion on one
// replica takes to empty another's copy (publish to delivery), over 200
// deletions, and holds it to a bound a loaded machine keeps.
func TestNearStoreInvalidationBound(t *testing.T) {
	a, b, _, invalidated := nearPair(t, time.Minute)
	ctx := context.Background()
	var lat []time.Duration
	for i := range 200 {
		name := fmt.Sprintf("bound-%d-%d", time.Now().UnixNano(), i)
		if err := a.Set(ctx, name, []byte("v"), time.Minute, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Get(ctx, name); err != nil {
			t.Fatal(err)
		}
		drain(invalidated)
		start := time.Now()
		if err := a.Delete(ctx, name); err != nil {
			t.Fatal(err)
		}
		select {
		case at := <-invalidated:
			lat = append(lat, at.Sub(start))
		case <-time.After(30 * time.Second):
			t.Fatalf("deletion %d never reached b", i)
		}
	}
	slices.Sort(lat)
	p50, p99, worst := lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	t.Logf("delete on one replica -> other replica's copy emptied: p50 %v, p99 %v, max %v (200 deletions)", p50, p99, worst)
	if p99 > 2*time.Second {
		t.Fatalf("p99 %v: invalidations are not reaching other replicas promptly", p99)
	}
}

func drain(c chan time.Time) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}
