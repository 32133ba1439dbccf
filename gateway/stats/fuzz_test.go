package stats

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/migrant-health/mhg/conformance/examples/population"
	"github.com/migrant-health/mhg/conformance/measures"
	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/gateway/disclosure"
	"github.com/migrant-health/mhg/gateway/federate/federatetest"
	"github.com/migrant-health/mhg/mappings"
)

// FuzzEvaluateRelease runs random populations (size, seed, national
// profile), measures, strata and terms through evaluation, release and
// rendering, and reads the MeasureReport back as an auditor would: no
// published count in 1..k-1, no masked count derivable narrower than k,
// and the report valid R4.
func FuzzEvaluateRelease(f *testing.F) {
	cat, err := measures.Load()
	if err != nil {
		f.Fatal(err)
	}
	eng, err := mappings.Load()
	if err != nil {
		f.Fatal(err)
	}
	ev := New(cat, eng)
	ms := cat.Measures()
	strata := measures.Strata()
	profiles := []struct{ country, profile string }{{"DE", "de-basis"}, {"NL", "nl-core"}, {"UA", "ips"}, {"US", "us-core"}}
	f.Add(uint64(1), uint64(2))
	f.Add(uint64(2025), uint64(7))
	f.Add(uint64(0), uint64(0))
	f.Fuzz(func(t *testing.T, seed, choice uint64) {
		r := rand.New(rand.NewPCG(seed, choice))
		p := profiles[r.IntN(len(profiles))]
		opts := population.Options{Seed: seed, Patients: 20 + r.IntN(180), Source: "fuzz", Country: p.country, Profile: p.profile}
		src := federatetest.PopulationSource(t, opts)
		m := ms[r.IntN(len(ms))]
		var by []string
		for range r.IntN(3) {
			s := strata[r.IntN(len(strata))].Code
			if len(by) == 0 || by[0] != s {
				by = append(by, s)
			}
		}
		year := 2020 + r.IntN(6)
		period := measures.Period{Start: time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC), End: time.Date(year, 12, 31, 0, 0, 0, 0, time.UTC)}
		counts, err := ev.EvaluateSource(context.Background(), src, Request{Measure: m, Period: period, Strata: by})
		if err != nil {
			t.Fatal(err)
		}
		rules := disclosure.Rules{K: 2 + r.IntN(20), Rounding: []int{0, 0, 3, 5, 10}[r.IntN(5)]}
		rep, err := Release(m, period, by, counts, rules)
		if err != nil {
			t.Fatalf("%s by %v, %+v: %v", m.ID, by, rules, err)
		}
		b, err := rep.MeasureReport("fuzz", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r4.Parse(b); err != nil {
			t.Fatalf("not valid R4: %v\n%s", err, b)
		}
		rel, err := PublishedRelease(b)
		if err != nil {
			t.Fatalf("%v\n%s", err, b)
		}
		if err := disclosure.Check(rel); err != nil {
			t.Fatalf("%s by %v, %+v: %v\n%s", m.ID, by, rules, err, b)
		}
	})
}
