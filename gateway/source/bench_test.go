package source

import (
	"context"
	"encoding/json"
	"net/url"
	"testing"
)

// The bundle source's Read and Search are measured against baselines in
// this file: Read against a bare map lookup of the same bytes (the least a
// read can cost), Search against a scan that decodes every Observation's
// subject (what the patient index saves).

func benchSetup(b *testing.B) (*Bundle, string) {
	b.Helper()
	src := sharedSynthea(b)
	return src, fixturePatientID(b, maggioFile)
}

func BenchmarkBundleRead(b *testing.B) {
	src, pid := benchSetup(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := src.Read(ctx, "Patient", pid); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBundleReadBaselineMap(b *testing.B) {
	src, pid := benchSetup(b)
	m := make(map[string][]byte, len(src.all))
	for _, r := range src.all {
		m[r.Type+"/"+r.ID] = r.JSON
	}
	typ := "Patient"
	b.ReportAllocs()
	for b.Loop() {
		if m[typ+"/"+pid] == nil {
			b.Fatal("missing")
		}
	}
}

func BenchmarkBundleSearch(b *testing.B) {
	src, pid := benchSetup(b)
	ctx := context.Background()
	params := url.Values{"patient": {pid}}
	b.ReportAllocs()
	for b.Loop() {
		rs, err := src.Search(ctx, "Observation", params)
		if err != nil || len(rs) == 0 {
			b.Fatal(err)
		}
	}
}

func BenchmarkBundleSearchBaselineScan(b *testing.B) {
	src, pid := benchSetup(b)
	want := "Patient/" + pid
	b.ReportAllocs()
	for b.Loop() {
		var out []Resource
		for _, r := range src.all {
			if r.Type != "Observation" {
				continue
			}
			var f struct{ Subject struct{ Reference string } }
			if err := json.Unmarshal(r.JSON, &f); err != nil {
				b.Fatal(err)
			}
			if f.Subject.Reference == want {
				out = append(out, r)
			}
		}
		if len(out) == 0 {
			b.Fatal("no match")
		}
	}
}

// BenchmarkParseSearchPage measures one validated page of ten Observations
// of the FHIR connector; BenchmarkParseSearchPageBaselineJSON decodes the
// same page with encoding/json alone, so the ratio is the price of R4
// validation.
func BenchmarkParseSearchPage(b *testing.B) {
	page := benchPage(b)
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for b.Loop() {
		rs, _, _, err := parseSearchPage(page, "Observation")
		if err != nil || len(rs) != 10 {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseSearchPageBaselineJSON(b *testing.B) {
	page := benchPage(b)
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for b.Loop() {
		var v map[string]any
		if err := json.Unmarshal(page, &v); err != nil {
			b.Fatal(err)
		}
	}
}

func benchPage(b *testing.B) []byte {
	b.Helper()
	src, pid := benchSetup(b)
	obs, err := src.Search(context.Background(), "Observation", url.Values{"patient": {pid}})
	if err != nil || len(obs) < 10 {
		b.Fatalf("%d observations: %v", len(obs), err)
	}
	type entry struct {
		Resource json.RawMessage   `json:"resource"`
		Search   map[string]string `json:"search"`
	}
	page := map[string]any{"resourceType": "Bundle", "type": "searchset"}
	var entries []entry
	for _, r := range obs[:10] {
		entries = append(entries, entry{Resource: r.JSON, Search: map[string]string{"mode": "match"}})
	}
	page["entry"] = entries
	out, err := json.Marshal(page)
	if err != nil {
		b.Fatal(err)
	}
	return out
}
