package storebench

import (
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/maypok86/otter/v2"
)

const (
	keys      = 100_000  // distinct keys in the workload
	budget    = 64 << 20 // bytes the cache may hold
	zipfS     = 1.1
	entryCost = 96 // per-entry overhead counted on top of key and value
)

// candidate is the part of a cache the gateway needs: per-entry TTL and
// a byte budget.
type candidate interface {
	get(k string) ([]byte, bool)
	set(k string, v []byte, ttl time.Duration)
	heldBytes() int64
}

// sizeOf gives key i a stable value size between 512 B and 8 KiB.
func sizeOf(i uint64) int { return 512 + int(i*2654435761%7681) }

var values = func() [][]byte {
	out := make([][]byte, keys)
	for i := range out {
		out[i] = make([]byte, sizeOf(uint64(i)))
	}
	return out
}()

var names = func() []string {
	out := make([]string, keys)
	for i := range out {
		out[i] = fmt.Sprintf("mhg:v1:res:de:1:%064x", i)
	}
	return out
}()

// ttlOf spreads the three kinds' TTLs over the keys.
func ttlOf(i uint64) time.Duration {
	switch i % 3 {
	case 0:
		return 10 * time.Minute
	case 1:
		return 30 * time.Second
	default:
		return 15 * time.Second
	}
}

// run is the read-through loop: get, and set on a miss.
func run(b *testing.B, c candidate) {
	var hits, total atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 1))
		z := rand.NewZipf(r, zipfS, 1, keys-1)
		var h, n int64
		for pb.Next() {
			i := z.Uint64()
			n++
			if _, ok := c.get(names[i]); ok {
				h++
				continue
			}
			c.set(names[i], values[i], ttlOf(i))
		}
		hits.Add(h)
		total.Add(n)
	})
	b.StopTimer()
	b.ReportMetric(100*float64(hits.Load())/float64(total.Load()), "hit%")
	b.ReportMetric(float64(c.heldBytes())/float64(budget), "held/budget")
}

func weight(k string, v []byte) int64 { return int64(entryCost + len(k) + len(v)) }

type otterCache struct {
	c *otter.Cache[string, otterEntry]
}

type otterEntry struct {
	v   []byte
	ttl time.Duration
}

func newOtter(b testing.TB) candidate {
	c, err := otter.New(&otter.Options[string, otterEntry]{
		MaximumWeight: budget,
		Weigher:       func(k string, e otterEntry) uint32 { return uint32(weight(k, e.v)) },
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, otterEntry]) time.Duration {
			return e.Value.ttl
		}),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.StopAllGoroutines() })
	return otterCache{c}
}

func (o otterCache) get(k string) ([]byte, bool) {
	e, ok := o.c.GetIfPresent(k)
	return e.v, ok
}
func (o otterCache) set(k string, v []byte, ttl time.Duration) { o.c.Set(k, otterEntry{v, ttl}) }
func (o otterCache) heldBytes() int64 {
	o.c.CleanUp()
	return int64(o.c.WeightedSize())
}

type ristrettoCache struct {
	c *ristretto.Cache[string, []byte]
}

func newRistretto(b testing.TB) candidate {
	c, err := ristretto.NewCache(&ristretto.Config[string, []byte]{
		NumCounters: 10 * keys,
		MaxCost:     budget,
		BufferItems: 64,
		Metrics:     false,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	return ristrettoCache{c}
}

func (r ristrettoCache) get(k string) ([]byte, bool) { return r.c.Get(k) }
func (r ristrettoCache) set(k string, v []byte, ttl time.Duration) {
	r.c.SetWithTTL(k, v, weight(k, v), ttl)
}
func (r ristrettoCache) heldBytes() int64 {
	r.c.Wait()
	var n int64
	for i := range keys {
		if v, ok := r.c.Get(names[i]); ok {
			n += weight(names[i], v)
		}
	}
	return n
}

// lruCache is golang-lru's expirable LRU. It bounds entries, not bytes,
// and has one TTL for the whole cache: the budget becomes a count at the
// mean value size, and the TTL the longest one.
type lruCache struct {
	c *expirable.LRU[string, []byte]
}

func newLRU(testing.TB) candidate {
	mean := int64(entryCost + len(names[0]) + (512+8192)/2)
	return lruCache{expirable.NewLRU[string, []byte](int(budget/mean), nil, 10*time.Minute)}
}

func (l lruCache) get(k string) ([]byte, bool)             { return l.c.Get(k) }
func (l lruCache) set(k string, v []byte, _ time.Duration) { l.c.Add(k, v) }
func (l lruCache) heldBytes() int64 {
	var n int64
	for _, k := range l.c.Keys() {
		if v, ok := l.c.Peek(k); ok {
			n += weight(k, v)
		}
	}
	return n
}

func BenchmarkReadThrough(b *testing.B) {
	for _, tc := range []struct {
		name string
		new  func(testing.TB) candidate
	}{
		{"otter", newOtter},
		{"ristretto", newRistretto},
		{"golang-lru-expirable", newLRU},
	} {
		b.Run(tc.name, func(b *testing.B) { run(b, tc.new(b)) })
	}
}

// TestPerEntryTTL checks what the benchmark cannot: whether a candidate
// honours a TTL per entry, as the gateway's kinds and negative entries
// need.
func TestPerEntryTTL(t *testing.T) {
	for _, tc := range []struct {
		name string
		new  func(testing.TB) candidate
		want bool
	}{
		{"otter", newOtter, true},
		{"ristretto", newRistretto, true},
		{"golang-lru-expirable", newLRU, false}, // one TTL per cache
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.new(t)
			c.set("short", []byte("v"), 50*time.Millisecond)
			c.set("long", []byte("v"), time.Hour)
			if r, ok := c.(ristrettoCache); ok {
				r.c.Wait()
			}
			time.Sleep(1100 * time.Millisecond)
			_, shortOK := c.get("short")
			_, longOK := c.get("long")
			if got := !shortOK && longOK; got != tc.want {
				t.Errorf("per-entry TTL honoured = %v, want %v", got, tc.want)
			}
		})
	}
}
