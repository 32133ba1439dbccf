package stats

import (
	"context"
	"net/url"
	"testing"

	"github.com/migrant-health/mhg/conformance/examples/population"
	"github.com/migrant-health/mhg/conformance/measures"
	"github.com/migrant-health/mhg/gateway/source"
	"github.com/migrant-health/mhg/mappings"
)

// BenchmarkEvaluate evaluates the diabetes prevalence (every adult is read)
// over a generated population, next to its baseline: reading the same
// resources from the same source without mapping or evaluating them.
func BenchmarkEvaluate(b *testing.B) {
	opts := population.Options{Seed: 1, Patients: 2000, Source: "bench", Country: "DE", Profile: "de-basis"}
	src := openPopulation(b, opts)
	cat, _ := measures.Load()
	eng, _ := mappings.Load()
	m, _ := cat.Measure("mhp-diabetes-prevalence")
	ev := New(cat, eng)
	ctx := context.Background()
	b.Run("read-alone", func(b *testing.B) {
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			var ids []string
			_ = scan(ctx, src, "Patient", url.Values{}, func(r source.Resource) error {
				n++
				ids = append(ids, r.ID)
				if len(ids) == BatchSize {
					_ = scan(ctx, src, "Condition", url.Values{"patient": {joinIDs(ids)}}, func(source.Resource) error { n++; return nil })
					ids = ids[:0]
				}
				return nil
			})
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "resources/s")
	})
	b.Run("evaluate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ev.EvaluateSource(ctx, src, Request{Measure: m, Period: year2025, Strata: []string{"sex", "age-band-who"}}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*src.Len())/b.Elapsed().Seconds(), "resources/s")
	})
}

func joinIDs(ids []string) string {
	out := ""
	for i, id := range ids {
		if i > 0 {
			out += ","
		}
		out += id
	}
	return out
}
