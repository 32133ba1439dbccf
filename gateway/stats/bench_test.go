package stats

import (
	"context"
	"log/slog"
	"net/url"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/migrant-health/mhg/conformance/examples/population"
	"github.com/migrant-health/mhg/conformance/measures"
	"github.com/migrant-health/mhg/gateway/federate/federatetest"
	"github.com/migrant-health/mhg/gateway/source"
	"github.com/migrant-health/mhg/mappings"
)

// benchPatients is the population of BenchmarkEvaluate:
// MHG_BENCH_PATIENTS, else 10,000 (about 110,000 resources, which make
// bench loads in a few seconds on two cores). MHG_BENCH_PATIENTS=100000
// is the full case: about 1.1 million resources, a few minutes to load
// and some 4 GB of memory.
func benchPatients(b *testing.B) int {
	if v := os.Getenv("MHG_BENCH_PATIENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("MHG_BENCH_PATIENTS=%q", v)
		}
		return n
	}
	return 10_000
}

// heapPeak samples the live heap (as each GC marks it) while fn runs and
// returns its peak above the live heap just before: what fn itself kept
// at most, whatever garbage the collector's pacing lets pile up (which
// grows with the source's own data, not with what fn keeps). The two
// collections it forces, before and after fn, are outside the
// benchmark's timer: they collect the source's heap, which neither the
// read nor the evaluation would pay for.
func heapPeak(b *testing.B, fn func()) (peak uint64) {
	b.StopTimer()
	runtime.GC()
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	base := read()
	var top atomic.Uint64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			if v := read(); v > top.Load() {
				top.Store(v)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	b.StartTimer()
	fn()
	b.StopTimer()
	// What fn still holds at its end counts too.
	runtime.GC()
	close(done)
	<-stopped
	b.StartTimer()
	if t := top.Load(); t > base {
		return t - base
	}
	return 0
}

// counted is a source that counts the resources it hands over.
type counted struct {
	Source
	n atomic.Int64
}

func (c *counted) Scan(ctx context.Context, typ string, params url.Values, fn func(source.Resource) error) error {
	return scan(ctx, c.Source, typ, params, func(r source.Resource) error {
		c.n.Add(1)
		return fn(r)
	})
}

// liveHeap collects garbage and returns the live heap.
func liveHeap() uint64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(sample)
	return sample[0].Value.Uint64()
}

// BenchmarkEvaluate evaluates the diabetes prevalence (every adult is
// read) by sex and WHO age band over a generated population, next to its
// baseline in the same run: reading the same resources from the same
// source (the Patients, then their Conditions, a batch of patients at a
// time) without mapping or evaluating them. It does so twice: over a
// bundle source (the resources in memory, so reading them costs little
// more than walking a list: the ratio there is what evaluation costs in
// CPU), and over a FHIR server on loopback (federatetest.PopulationFHIR,
// declaring no search parameters, so that both sides read exactly the same
// pages: the ratio there is what evaluation adds to reading a national
// server). Each reports the resources the source handed over per second
// (timed without the forced collections of the memory measurement) and
// the peak live heap it added to the source's own as the collector
// sampled it (peak-MiB, which includes garbage allocated while a
// collection was marking). evaluate-retained measures what evaluation
// holds: it stops the scan about ten times with no batch in flight,
// collects garbage and reports the largest live heap above the one before
// (retained-MiB), which stays flat as the population grows.
func BenchmarkEvaluate(b *testing.B) {
	n := benchPatients(b)
	opts := population.Options{Seed: 1, Patients: n, Source: "bench", Country: "DE", Profile: "de-basis", Routine: true}
	bundle := federatetest.PopulationSource(b, opts)
	cat, _ := measures.Load()
	eng, _ := mappings.Load()
	m, _ := cat.Measure("mhp-diabetes-prevalence")
	req := Request{Measure: m, Period: year2025, Strata: []string{"sex", "age-band-who"}}
	b.Logf("%d patients, %d resources in the source, GOMAXPROCS %d", n, bundle.Len(), runtime.GOMAXPROCS(0))
	evaluatePair(b, "bundle/", &counted{Source: bundle}, cat, eng, req)
	b.Run("bundle/evaluate-retained", func(b *testing.B) {
		ctx := context.Background()
		var retained uint64
		for b.Loop() {
			base := liveHeap()
			ev := New(cat, eng)
			ev.pauseEvery = max(1, n/BatchSize/10)
			ev.pause = func() {
				if h := liveHeap(); h > base {
					retained = max(retained, h-base)
				}
			}
			if _, err := ev.EvaluateSource(ctx, bundle, req); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(retained)/(1<<20), "retained-MiB")
	})
	srv := federatetest.PopulationFHIR(b, opts, false)
	fhir, err := source.NewFHIR(source.Options{ID: opts.Source, Country: opts.Country, Profile: opts.Profile, Kind: source.KindFHIR,
		BaseURL: srv.URL, Timeout: time.Minute, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	evaluatePair(b, "fhir/", &counted{Source: fhir}, cat, eng, req)
}

// evaluatePair runs the read-alone baseline and the evaluation over src.
func evaluatePair(b *testing.B, prefix string, src *counted, cat *measures.Catalogue, eng *mappings.Engine, req Request) {
	ctx := context.Background()
	b.Run(prefix+"read-alone", func(b *testing.B) {
		b.ReportAllocs()
		src.n.Store(0)
		var peak uint64
		for b.Loop() {
			peak = max(peak, heapPeak(b, func() {
				var ids []string
				flush := func() {
					if len(ids) == 0 {
						return
					}
					if err := src.Scan(ctx, "Condition", url.Values{"patient": {strings.Join(ids, ",")}}, func(source.Resource) error { return nil }); err != nil {
						b.Fatal(err)
					}
					ids = ids[:0]
				}
				err := src.Scan(ctx, "Patient", url.Values{}, func(r source.Resource) error {
					ids = append(ids, "Patient/"+r.ID)
					if len(ids) == BatchSize {
						flush()
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				flush()
			}))
		}
		b.ReportMetric(float64(src.n.Load())/b.Elapsed().Seconds(), "resources/s")
		b.ReportMetric(float64(peak)/(1<<20), "peak-MiB")
	})
	ev := New(cat, eng)
	b.Run(prefix+"evaluate", func(b *testing.B) {
		b.ReportAllocs()
		src.n.Store(0)
		var peak uint64
		for b.Loop() {
			peak = max(peak, heapPeak(b, func() {
				if _, err := ev.EvaluateSource(ctx, src, req); err != nil {
					b.Fatal(err)
				}
			}))
		}
		b.ReportMetric(float64(src.n.Load())/b.Elapsed().Seconds(), "resources/s")
		b.ReportMetric(float64(peak)/(1<<20), "peak-MiB")
	})
}
