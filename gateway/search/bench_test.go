package search

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/migrant-health/mhg/conformance/r4"
)

// benchEntries is a patient's Observations at a realistic size: the test
// resources repeated to 500.
func benchEntries(b *testing.B) []res {
	all := loadResources(b)
	var out []res
	for len(out) < 500 {
		out = append(out, all["Observation"]...)
	}
	return out
}

// BenchmarkApplyBaseline renders the same entries as R4 JSON with the
// gateway's codec: the per-resource cost every search already pays (on
// the way in from the source and out to the client), to read
// BenchmarkApply against.
func BenchmarkApplyBaseline(b *testing.B) {
	entries := benchEntries(b)
	b.ReportAllocs()
	for b.Loop() {
		for _, e := range entries {
			if _, err := r4.Marshal(e.m); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkApply evaluates a code, a category and a date range and sorts
// by date, the common clinician query, over the same entries.
func BenchmarkApply(b *testing.B) {
	entries := benchEntries(b)
	q, err := parseQuery("Observation", "category=laboratory&code=http://loinc.org|4548-4,2345-7&date=ge2023-01&date=lt2024&_sort=-date")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if got := Apply(q, entries, func(r res) proto.Message { return r.m }); len(got) == 0 {
			b.Fatal("no match")
		}
	}
}
