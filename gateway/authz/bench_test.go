package authz

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/migrant-health/mhg/policies"
)

// Decision latency for the query and release phases with 200 and 2,000
// agreements and 20 consent provisions, next to an empty policy (a constant decision)
// as the baseline: the difference is what the policies cost. Each
// benchmark reports ns/op, allocs/op, the median (p50-µs) and, for the
// real policies, the ratio of its median to the baseline's (x-empty).
//
//	go test -run '^$' -bench BenchmarkDecide -benchmem ./gateway/authz/

type benchEngines struct {
	empty, demo *Engine
	grown       []*Engine // 200 and 2,000 agreements
	memo        *Engine   // 2,000 agreements, memoizing
}

var (
	benchOnce sync.Once
	benchEng  benchEngines
	benchErr  error

	baselineMu  sync.Mutex
	baselineP50 = map[string]float64{}
)

func engines(b *testing.B) benchEngines {
	b.Helper()
	benchOnce.Do(func() {
		ctx := context.Background()
		if benchEng.empty, benchErr = benchEngine(ctx, emptyPolicyFS()); benchErr != nil {
			return
		}
		if benchEng.demo, benchErr = benchEngine(ctx, policies.FS); benchErr != nil {
			return
		}
		for _, n := range []int{200, 2000} {
			var grown fs.FS
			if grown, benchErr = WithAgreements(policies.FS, n); benchErr != nil {
				return
			}
			var e *Engine
			if e, benchErr = benchEngine(ctx, grown); benchErr != nil {
				return
			}
			benchEng.grown = append(benchEng.grown, e)
		}
		benchEng.memo = benchEng.grown[1].withMemo(DefaultMemoEntries)
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchEng
}

func benchInputs() []struct {
	name string
	in   Input
} {
	return []struct {
		name string
		in   Input
	}{
		{"query", BenchQueryInput()},
		{"release", BenchReleaseInput(20)},
	}
}

// runDecide measures Decide and reports the median in microseconds.
func runDecide(b *testing.B, e *Engine, in Input) float64 {
	b.Helper()
	ctx := context.Background()
	durs := make([]time.Duration, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		if _, err := e.Decide(ctx, in); err != nil {
			b.Fatal(err)
		}
		durs[i] = time.Since(start)
	}
	b.StopTimer()
	slices.Sort(durs)
	p50 := float64(durs[len(durs)/2].Nanoseconds()) / 1e3
	b.ReportMetric(p50, "p50-µs")
	return p50
}

func BenchmarkDecide(b *testing.B) {
	eng := engines(b)
	for _, tc := range benchInputs() {
		// The policies must decide what the benchmark claims to measure.
		for _, e := range eng.grown {
			if d, _ := e.Decide(context.Background(), tc.in); !d.Allow || len(d.Agreements) != 2 {
				b.Fatalf("%s: benchmark input not allowed under both agreements: %+v", tc.name, d)
			}
		}
		b.Run(tc.name+"/empty-policy", func(b *testing.B) {
			p50 := runDecide(b, eng.empty, tc.in)
			baselineMu.Lock()
			baselineP50[tc.name] = p50
			baselineMu.Unlock()
		})
		// The demo set has 4 agreements: with the index, 200 cost the same.
		b.Run(tc.name+"/4-agreements-20-provisions", func(b *testing.B) {
			runDecide(b, eng.demo, tc.in)
		})
		for i, n := range []int{200, 2000} {
			b.Run(fmt.Sprintf("%s/%d-agreements-20-provisions", tc.name, n), func(b *testing.B) {
				p50 := runDecide(b, eng.grown[i], tc.in)
				baselineMu.Lock()
				base := baselineP50[tc.name]
				baselineMu.Unlock()
				if base > 0 {
					b.ReportMetric(p50/base, "x-empty")
				}
			})
		}
		// The same input again, as a client reading page after page: the
		// memoized decision (its own id, span, metrics, log entry).
		b.Run(tc.name+"/2000-agreements-memoized", func(b *testing.B) {
			p50 := runDecide(b, eng.memo, tc.in)
			baselineMu.Lock()
			base := baselineP50[tc.name]
			baselineMu.Unlock()
			if base > 0 {
				b.ReportMetric(p50/base, "x-empty")
			}
		})
	}
}

// BenchmarkInputValue compares building the Rego input by hand with the
// JSON round trip it replaces.
func BenchmarkInputValue(b *testing.B) {
	in := benchInputs()[1].in.normalized()
	b.Run("json-roundtrip", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			raw, _ := json.Marshal(in)
			var doc any
			_ = json.Unmarshal(raw, &doc)
			if _, err := astInterfaceToValue(doc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = in.value()
		}
	})
}
