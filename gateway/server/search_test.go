package server

import (
	"encoding/json"
	"net/url"
	"os"
	"strings"
	"testing"
)

// aminaIDs finds the gateway ids of the sample migrant's records, by source.
func aminaIDs(t *testing.T, g *gateway, tok string) map[string]string {
	t.Helper()
	r := g.get(t, "/Patient?identifier="+aminaPassport, tok)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	ids := map[string]string{}
	for _, p := range r.entries("match") {
		id := p["id"].(string)
		src, _, _ := strings.Cut(id, ".")
		ids[src] = id
	}
	return ids
}

// TestClinicalSearch runs the clinical search parameters through the whole
// gateway on the built-in samples: criteria evaluated on the released MHP
// resources, so a code search matches the international coding the
// mapping added beside the national one.
func TestClinicalSearch(t *testing.T) {
	t.Parallel()
	g := startGateway(t, nil, Options{})
	tok := g.token(t, "DE", "clinician", "TREAT")
	ids := aminaIDs(t, g, tok)
	de, nl := url.QueryEscape(ids["de-sample"]), url.QueryEscape(ids["nl-sample"])
	if de == "" || nl == "" {
		t.Fatalf("sample records missing: %v", ids)
	}

	// The German record codes hypothyroidism in ICD-10-GM only; SNOMED CT
	// 40930008 is what the mapping adds.
	raw, err := os.ReadFile("../../conformance/examples/de-sample/amina.json")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "40930008") {
		t.Fatal("the German sample already holds SNOMED CT 40930008; the test below would not show the added coding is searched")
	}

	for _, tc := range []struct {
		name, path string
		want       int
	}{
		{"all conditions", "/Condition?patient=" + de, 1},
		{"national code", "/Condition?patient=" + de + "&code=http://fhir.de/CodeSystem/bfarm/icd-10-gm|E03.9", 1},
		{"added international code only", "/Condition?patient=" + de + "&code=http://snomed.info/sct|40930008", 1},
		{"added WHO ICD-10", "/Condition?patient=" + de + "&code=http://hl7.org/fhir/sid/icd-10|E03.9", 1},
		{"wrong system", "/Condition?patient=" + de + "&code=http://snomed.info/sct|E03.9", 0},
		{"code without system", "/Condition?patient=" + nl + "&code=40930008", 1},
		{"code text", "/Condition?patient=" + nl + "&code:text=hypothyr", 1},
		{"code not", "/Condition?patient=" + nl + "&code:not=40930008", 0},
		{"onset year", "/Condition?patient=" + de + "&onset-date=2016", 1},
		{"onset ge", "/Condition?patient=" + de + "&onset-date=ge2017", 0},
		{"onset lt", "/Condition?patient=" + de + "&onset-date=lt2017-01-01", 1},
		{"lab category", "/Observation?patient=" + de + "&category=laboratory", 2},
		{"LOINC kept", "/Observation?patient=" + nl + "&code=http://loinc.org|718-7", 1},
		{"effective month", "/Observation?patient=" + nl + "&date=2024-02", 2},
		{"effective before", "/Observation?patient=" + nl + "&date=lt2024", 0},
		{"immunization date", "/Immunization?patient=" + nl + "&date=ge2022", 1},
		{"immunization two prefixes", "/Immunization?patient=" + nl + "&date=ge2021&date=lt2022", 1},
		{"immunization OR", "/Immunization?patient=" + nl + "&date=2021,2023", 2},
		{"count summary", "/Immunization?patient=" + nl + "&date=2023&_summary=count", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := g.get(t, tc.path, tok)
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if got := int(r.json["total"].(float64)); got != tc.want {
				t.Errorf("total %d, want %d", got, tc.want)
			}
			if !strings.Contains(tc.path, "_summary") && len(r.entries("match")) != tc.want {
				t.Errorf("%d entries, want %d", len(r.entries("match")), tc.want)
			}
		})
	}

	t.Run("sort and paging keep the criteria", func(t *testing.T) {
		for _, order := range []string{"date", "-date"} {
			r := g.get(t, "/Immunization?patient="+nl+"&date=ge2000&_sort="+order+"&_count=1", tok)
			var dates []string
			for {
				if r.status != 200 {
					t.Fatalf("status %d: %s", r.status, r.body)
				}
				for _, e := range r.entries("match") {
					dates = append(dates, e["occurrenceDateTime"].(string))
				}
				next := ""
				for _, l := range r.json["link"].([]any) {
					if l.(map[string]any)["relation"] == "next" {
						next = l.(map[string]any)["url"].(string)
					}
				}
				if next == "" {
					break
				}
				if !strings.Contains(next, "_sort=") || !strings.Contains(next, "date=ge2000") {
					t.Fatalf("next link lost the criteria: %s", next)
				}
				r = g.get(t, next, tok)
			}
			if len(dates) != 2 || (order == "date") != (dates[0] < dates[1]) {
				t.Errorf("_sort=%s: %v", order, dates)
			}
		}
	})

	t.Run("bad input", func(t *testing.T) {
		for _, tc := range []struct {
			name, path string
			hdr        []string
			status     int
			code       string
		}{
			{"invalid date", "/Condition?patient=" + de + "&onset-date=2016-13", nil, 400, "value"},
			{"unsupported modifier", "/Condition?patient=" + de + "&code:below=E03", nil, 400, "not-supported"},
			{"unknown strict", "/Condition?patient=" + de + "&colour=red", []string{"Prefer", "handling=strict"}, 400, "not-supported"},
			{"sort unknown strict", "/Condition?patient=" + de + "&_sort=code", []string{"Prefer", "handling=strict"}, 400, "not-supported"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := g.get(t, tc.path, tok, tc.hdr...)
				if r.status != tc.status || r.outcomeCode(t) != tc.code {
					t.Fatalf("got %d %s", r.status, r.body)
				}
				if strings.Contains(string(r.body), "2016-13") {
					t.Errorf("the outcome quotes the value: %s", r.body)
				}
			})
		}
		r := g.get(t, "/Condition?patient="+de+"&colour=red&_sort=code", tok, "Prefer", "handling=lenient")
		if r.status != 200 || len(r.entries("match")) != 1 {
			t.Fatalf("lenient: %d %s", r.status, r.body)
		}
		oo, _ := json.Marshal(r.entries("outcome"))
		if !strings.Contains(string(oo), "colour") || !strings.Contains(string(oo), "_sort") {
			t.Errorf("lenient: the ignored parameters are not named: %s", oo)
		}
	})
}
