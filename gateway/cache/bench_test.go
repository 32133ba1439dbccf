package cache

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// benchValue stands for one mapped Patient as a binary proto.
var benchValue = bytes.Repeat([]byte{0x5a}, 2048)

var benchKey = Key{Kind: KindResource, Source: "de-sample", Version: "de-basis@1", Parts: []string{"Patient", "fa470b46-b649-4f03-a9e5-c2e3f483524c"}}

func benchCache(b testing.TB, s Store) *Cache {
	b.Helper()
	c, err := New(Options{
		Store:          s,
		TTL:            map[Kind]time.Duration{KindResource: time.Hour},
		Keys:           testKeys(b, "k1"),
		Namespace:      fmt.Sprintf("bench%d", nsCounter.Add(1)),
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		TracerProvider: tracenoop.NewTracerProvider(),
		MeterProvider:  metricnoop.NewMeterProvider(),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	return c
}

func benchMemory(b testing.TB) Store {
	s, err := NewMemoryStore(MemoryOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func benchRedis(b testing.TB) Store {
	s, err := NewRedisStore(RedisOptions{URL: needRedisURL(b), Timeout: time.Second, NoTelemetry: true})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// mapHitLoop is the baseline: the cheapest cache there is, a map under a
// read lock keyed by the joined parts, with no hashing, sealing or store.
func mapHitLoop() func(more func() bool) {
	var mu sync.RWMutex
	m := map[string][]byte{strings.Join(benchKey.Parts, "|"): benchValue}
	return func(more func() bool) {
		for more() {
			mu.RLock()
			v := m[strings.Join(benchKey.Parts, "|")]
			mu.RUnlock()
			if len(v) != len(benchValue) {
				panic("miss")
			}
		}
	}
}

// fetchHitLoop returns a function that runs n cached Fetches on a fresh
// cache over open's store.
func fetchHitLoop(tb testing.TB, open func(testing.TB) Store) func(n func() bool) {
	c := benchCache(tb, open(tb))
	ctx := context.Background()
	load := func(context.Context) ([]byte, error) { return benchValue, nil }
	if _, err := c.Fetch(ctx, benchKey, false, load); err != nil {
		tb.Fatal(err)
	}
	return func(more func() bool) {
		for more() {
			v, err := c.Fetch(ctx, benchKey, false, countMiss)
			if err != nil || len(v) != len(benchValue) {
				tb.Fatal(err)
			}
		}
	}
}

// benchMisses counts loads in hit benchmarks: a store hiccup on a busy
// machine turns a hit into a miss, which the benchmark reports rather than
// hides.
var benchMisses atomic.Int64

func countMiss(context.Context) ([]byte, error) {
	benchMisses.Add(1)
	return benchValue, nil
}

// baselines are ns per op of the map and memory hits, measured once
// outside the benchmark framework so that every sub-benchmark can state
// its cost as a ratio.
var (
	baselineOnce     sync.Once
	baseMap, baseMem float64
)

func baselines(tb testing.TB) (mapNs, memNs float64) {
	baselineOnce.Do(func() { baseMap, baseMem = measureBaselines(tb) })
	return baseMap, baseMem
}

func measureBaselines(tb testing.TB) (mapNs, memNs float64) {
	timeIt := func(run func(more func() bool)) float64 {
		const n = 20000
		i := 0
		start := time.Now()
		run(func() bool { i++; return i <= n })
		return float64(time.Since(start).Nanoseconds()) / n
	}
	mapNs = timeIt(mapHitLoop())
	memNs = timeIt(fetchHitLoop(tb, benchMemory))
	return mapNs, memNs
}

// BenchmarkFetchHit: a cached 2 KiB value through Fetch (HMAC of the key,
// AES-GCM open, store read) against the bare map baseline; x-map and
// x-memory are the ratios to the baselines.
func BenchmarkFetchHit(b *testing.B) {
	report := func(b *testing.B, vsMemory bool) {
		mapNs, memNs := baselines(b)
		ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(float64(benchMisses.Swap(0))/float64(b.N), "misses/op")
		b.ReportMetric(ns/mapNs, "x-map")
		if vsMemory {
			b.ReportMetric(ns/memNs, "x-memory")
		}
	}
	b.Run("map-baseline", func(b *testing.B) {
		b.ReportAllocs()
		mapHitLoop()(b.Loop)
	})
	b.Run("memory", func(b *testing.B) {
		run := fetchHitLoop(b, benchMemory)
		benchMisses.Store(0)
		b.ReportAllocs()
		run(b.Loop)
		report(b, false)
	})
	b.Run("redis", func(b *testing.B) {
		run := fetchHitLoop(b, benchRedis)
		benchMisses.Store(0)
		b.ReportAllocs()
		run(b.Loop)
		report(b, true)
	})
}

// BenchmarkFanIn100: 100 concurrent Fetches of one missing key per op,
// against a source that takes 2ms. Without singleflight that is 100 loads;
// the metric loads/op should be 1.
func BenchmarkFanIn100(b *testing.B) {
	for _, tc := range []struct {
		name string
		open func(testing.TB) Store
	}{{"memory", benchMemory}, {"redis", benchRedis}} {
		b.Run(tc.name, func(b *testing.B) {
			c := benchCache(b, tc.open(b))
			ctx := context.Background()
			var loads atomic.Int64
			load := func(context.Context) ([]byte, error) {
				loads.Add(1)
				time.Sleep(2 * time.Millisecond)
				return benchValue, nil
			}
			const fan = 100
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				k := benchKey
				k.Parts = []string{"Patient", fmt.Sprint(i)}
				var wg sync.WaitGroup
				start := make(chan struct{})
				for range fan {
					wg.Go(func() {
						<-start
						if _, err := c.Fetch(ctx, k, false, load); err != nil {
							b.Error(err)
						}
					})
				}
				close(start)
				wg.Wait()
			}
			perOp := float64(loads.Load()) / float64(i)
			b.ReportMetric(perOp, "loads/op")
			b.ReportMetric(fan/perOp, "fetches/load")
		})
	}
}
