package authz

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// Decision latency for the query and release phases with 200 agreements
// and 20 consent provisions, next to an empty policy (a constant decision)
// as the baseline: the difference is what the policies cost. Each
// benchmark reports ns/op, allocs/op, the median (p50-µs) and, for the
// real policies, the ratio of its median to the baseline's (x-empty).
//
//	go test -run '^$' -bench BenchmarkDecide -benchmem ./gateway/authz/

// benchCountries are parties of the generated agreements; they avoid the
// countries of the demo set, whose Rego tests must keep passing.
var benchCountries = []string{
	"AT", "BE", "BG", "CH", "CY", "CZ", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE",
	"IS", "IT", "LI", "LT", "LU", "LV", "MT", "NO", "PL", "PT", "RO", "SE", "SI", "SK", "TR",
	"MD", "GE", "AM", "AL", "RS", "BA", "ME", "MK", "SY", "AF",
}

// withAgreements writes the demo agreements plus generated ones, n in
// all, into a copy of the built-in policies.
func withAgreements(b *testing.B, n int) string {
	b.Helper()
	dir := copyBuiltin(b)
	var doc struct {
		Agreements []Agreement `json:"agreements"`
	}
	if err := json.Unmarshal([]byte(readFileTB(b, dir, "data/agreements.json")), &doc); err != nil {
		b.Fatal(err)
	}
	purposes := [][]string{{"TREAT", "COC"}, {"TREAT", "COC", "ETREAT"}, {"PUBHLTH"}, {"TREAT"}}
	for i := len(doc.Agreements); i < n; i++ {
		a := Agreement{
			ID: fmt.Sprintf("generated-%03d", i), Title: "generated", Kind: "bilateral",
			Parties:       []string{benchCountries[i%len(benchCountries)], benchCountries[(i*7+3)%len(benchCountries)]},
			Purposes:      purposes[i%len(purposes)],
			DataClasses:   []string{"C"},
			ResourceTypes: []string{"Patient", "Condition", "Observation"},
			ValidFrom:     "2024-01-01", ValidUntil: "2034-12-31",
			ExplicitConsentRequired: i%3 == 0,
			Obligations:             []Obligation{},
		}
		if a.Parties[0] == a.Parties[1] {
			a.Kind = "multilateral"
			a.Parties = []string{a.Parties[0], benchCountries[(i+1)%len(benchCountries)], benchCountries[(i+2)%len(benchCountries)]}
		}
		doc.Agreements = append(doc.Agreements, a)
	}
	out, err := json.Marshal(doc)
	if err != nil {
		b.Fatal(err)
	}
	writeFile(b, dir, "data/agreements.json", string(out))
	return dir
}

func readFileTB(b testing.TB, dir, name string) string {
	b.Helper()
	raw, err := fsysRead(dir, name)
	if err != nil {
		b.Fatal(err)
	}
	return string(raw)
}

// twentyProvisions is a consent that applies in part to the benchmark's
// requester: denies for other countries, purposes and labels, permits
// nested under them, so every provision is looked at.
func twentyProvisions() []Provision {
	var ps []Provision
	ps = append(ps, Provision{ConsentID: "c", Type: "deny", Start: "2020-01-01", End: "2040-12-31"})
	countries := []string{"FR", "BE", "AT", "PL", "UA", "IT", "ES", "SE", "NO"}
	for i, c := range countries {
		ps = append(ps, Provision{ConsentID: "c", Type: "permit", Level: 1, ActorCountries: []string{c, "DE"}, Purposes: []string{"TREAT", "COC"}, Classes: []string{"Condition", "Observation", "Patient"}, Start: fmt.Sprintf("202%d", i%5)})
	}
	for _, l := range []string{"PSY", "SUD", "ETH", "SDV", "SEX", "STD"} {
		ps = append(ps, Provision{ConsentID: "c", Type: "deny", Level: 2, SecurityLabels: []string{l}, ActorCountries: []string{"NL"}})
	}
	for _, p := range []string{"HRESCH", "PUBHLTH", "HOPERAT", "GOV"} {
		ps = append(ps, Provision{ConsentID: "c", Type: "deny", Level: 2, Purposes: []string{p}, End: "2040-06"})
	}
	return ps[:20]
}

type benchEngines struct {
	empty, demo, mhg *Engine
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
		empty := b.TempDir()
		writeFile(b, empty, ".manifest", `{"revision": "empty"}`)
		writeFile(b, empty, "mhg/authz/main.rego", "package mhg.authz\n\ndecision := {\"allow\": false, \"reasons\": [\"default.no-basis\"], \"obligations\": [], \"agreements\": []}\n")
		if benchEng.empty, benchErr = New(Options{Dir: empty, Logger: quietLogger()}); benchErr != nil {
			return
		}
		if benchEng.demo, benchErr = New(Options{Logger: quietLogger()}); benchErr != nil {
			return
		}
		benchEng.mhg, benchErr = New(Options{Dir: withAgreements(b, 200), Logger: quietLogger()})
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
	release := releaseInput(clinician("DE"), clinical("Condition", "HIV"), "NL", twentyProvisions()...)
	return []struct {
		name string
		in   Input
	}{
		{"query", queryInput(clinician("DE"), "Patient", "NL")},
		{"release", release},
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
		if d, _ := eng.mhg.Decide(context.Background(), tc.in); !d.Allow || len(d.Agreements) != 2 {
			b.Fatalf("%s: benchmark input not allowed under both agreements: %+v", tc.name, d)
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
		b.Run(tc.name+"/200-agreements-20-provisions", func(b *testing.B) {
			p50 := runDecide(b, eng.mhg, tc.in)
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
