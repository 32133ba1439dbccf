package stats

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/migrant-health/mhg/conformance/examples/population"
	"github.com/migrant-health/mhg/conformance/measures"
	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/gateway/disclosure"
	"github.com/migrant-health/mhg/gateway/federate/federatetest"
	"github.com/migrant-health/mhg/gateway/source"
	"github.com/migrant-health/mhg/mappings"
)

var year2025 = measures.Period{Start: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)}

// truth computes, from the generator's facts alone, which populations a
// person is in for 2025 and their strata: a plain loop, no measure engine.
func truth(measure string, p population.Person, country string) []bool {
	inYear := func(d string) bool { return strings.HasPrefix(d, "2025") }
	birthYear := -1
	if len(p.BirthDate) >= 4 {
		birthYear, _ = strconv.Atoi(p.BirthDate[:4])
	}
	switch measure {
	case "mhp-tb-active", "mhp-hiv-diagnoses":
		kind := population.TB
		if measure == "mhp-hiv-diagnoses" {
			kind = population.HIV
		}
		for _, c := range p.Conditions {
			if c.Kind == kind && inYear(c.Onset) && (kind == population.HIV || c.Status == "active") {
				return []bool{true}
			}
		}
		return []bool{false}
	case "mhp-diabetes-prevalence":
		adult := birthYear > 0 && birthYear <= 2007
		has := false
		for _, c := range p.Conditions {
			if c.Kind == population.Diabetes && c.Onset <= "2025-12-31" && (c.Abatement == "" || c.Abatement >= "2025-01-01") {
				has = true
			}
		}
		return []bool{adult, adult, adult && has}
	case "mhp-mcv-coverage":
		cohort := birthYear == 2023
		covered := false
		for _, v := range p.Vaccinations {
			second := fmt.Sprintf("%d%s", birthYear+2, p.BirthDate[4:])
			if v.Status == "completed" && v.Date <= second {
				covered = true
			}
		}
		return []bool{cohort, cohort, cohort && covered}
	}
	panic(measure)
}

func truthStratum(code string, p population.Person, country string) string {
	switch code {
	case "sex":
		return p.Sex
	case "country-of-birth":
		return p.BirthCountry
	case "citizenship":
		return p.Citizenship
	case "reporting-country":
		return country
	case "migration-status":
		switch p.Screening {
		case "yes":
			return "refugee"
		case "declined":
			return "declined"
		}
		return measures.NotRecorded
	case "age-band-who":
		if len(p.BirthDate) < 4 {
			return measures.Unknown
		}
		y, _ := strconv.Atoi(p.BirthDate[:4])
		age := 2025 - y // the period ends on 31 December
		bands := []struct {
			from int
			code string
		}{{65, "65+"}, {55, "55-64"}, {45, "45-54"}, {35, "35-44"}, {25, "25-34"}, {15, "15-24"}, {5, "5-14"}, {0, "0-4"}}
		for _, b := range bands {
			if age >= b.from {
				return b.code
			}
		}
	}
	panic(code)
}

// The evaluator's counts, per stratum, equal the counts of a plain loop
// over the generated people; every release passes the auditor's check and
// renders as a valid R4 MeasureReport.
func TestCountsMatchThePopulation(t *testing.T) {
	cat, err := measures.Load()
	if err != nil {
		t.Fatal(err)
	}
	eng, err := mappings.Load()
	if err != nil {
		t.Fatal(err)
	}
	ev := New(cat, eng)
	opts := []population.Options{
		{Seed: 7, Patients: 700, Source: "de-pop", Country: "DE", Profile: "de-basis"},
		{Seed: 7, Patients: 400, Source: "us-pop", Country: "US", Profile: "us-core", Routine: true},
	}
	strataSets := [][]string{nil, {"sex"}, {"migration-status"}, {"sex", "age-band-who"}, {"country-of-birth", "reporting-country"}}
	for _, o := range opts {
		src := federatetest.PopulationSource(t, o)
		people := population.People(o)
		for _, m := range cat.Measures() {
			for _, strata := range strataSets {
				t.Run(fmt.Sprintf("%s/%s/%s", o.Source, m.ID, strings.Join(strata, "+")), func(t *testing.T) {
					got, err := ev.EvaluateSource(context.Background(), src, Request{Measure: m, Period: year2025, Strata: strata})
					if err != nil {
						t.Fatal(err)
					}
					want := Counts{}
					for _, p := range people {
						in := truth(m.ID, p, o.Country)
						if !in[0] {
							continue
						}
						cats := make([]string, len(strata))
						for i, s := range strata {
							cats[i] = truthStratum(s, p, o.Country)
						}
						key := strings.Join(cats, "\x00")
						if want[key] == nil {
							want[key] = make([]int, len(in))
						}
						for i, ok := range in {
							if ok {
								want[key][i]++
							}
						}
					}
					if len(want) == 0 {
						t.Fatalf("the population has no one in %s: the test proves nothing", m.ID)
					}
					for k, w := range want {
						if fmt.Sprint(got[k]) != fmt.Sprint(w) {
							t.Errorf("stratum %q: got %v, want %v", strings.ReplaceAll(k, "\x00", "/"), got[k], w)
						}
					}
					for k := range got {
						if want[k] == nil {
							t.Errorf("stratum %q counted, but no one is in it", strings.ReplaceAll(k, "\x00", "/"))
						}
					}
					k := 10
					if len(m.Sensitivity) > 0 {
						k = 20
					}
					rep, err := Release(m, year2025, strata, got, disclosure.Rules{K: k})
					if err != nil {
						t.Fatal(err)
					}
					if err := disclosure.Check(rep.Release); err != nil {
						t.Fatal(err)
					}
					b, err := rep.MeasureReport("r1", time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC))
					if err != nil {
						t.Fatal(err)
					}
					if _, err := r4.Parse(b); err != nil {
						t.Fatalf("MeasureReport is not valid R4: %v\n%s", err, b)
					}
				})
			}
		}
	}
}

// The shortcuts (codes tested on the raw resource where the source cannot
// filter, patients outside a Patient-only initial population dropped
// first, only the Patient elements the criteria and strata read mapped,
// several batches at once) change no count: every measure and strata set
// over the four demo profiles counts as reading and mapping everything one
// batch at a time does.
func TestShortcutsChangeNoCount(t *testing.T) {
	cat, _ := measures.Load()
	eng, _ := mappings.Load()
	fast := New(cat, eng)
	fast.Workers = 3
	full := New(cat, eng)
	full.Workers, full.readAll = 1, true
	for _, o := range []population.Options{
		{Seed: 3, Patients: 400, Source: "de-s", Country: "DE", Profile: "de-basis"},
		{Seed: 3, Patients: 400, Source: "nl-s", Country: "NL", Profile: "nl-core"},
		{Seed: 3, Patients: 400, Source: "ua-s", Country: "UA", Profile: "ips"},
		{Seed: 3, Patients: 400, Source: "us-s", Country: "US", Profile: "us-core", Routine: true},
	} {
		src := federatetest.PopulationSource(t, o)
		for _, m := range cat.Measures() {
			for _, strata := range [][]string{nil, {"migration-status", "age-band-5"}, {"sex", "age-band-who"}, {"age-band-5"},
				{"sex", "reporting-country"}, {"country-of-birth", "citizenship"}, {"length-of-stay"}} {
				want, err := full.EvaluateSource(context.Background(), src, Request{Measure: m, Period: year2025, Strata: strata})
				if err != nil {
					t.Fatal(err)
				}
				got, err := fast.EvaluateSource(context.Background(), src, Request{Measure: m, Period: year2025, Strata: strata})
				if err != nil {
					t.Fatal(err)
				}
				if len(want) == 0 {
					t.Fatalf("%s %s: no one counted: the test proves nothing", o.Source, m.ID)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s %s %v: with shortcuts %v, reading everything %v", o.Source, m.ID, strata, got, want)
				}
			}
		}
	}
}

// A FHIR source is scanned page by page, with the code and date filters
// pushed down as search parameters where its CapabilityStatement declares
// them and tested here otherwise; either way it counts what the same
// population in a bundle source counts.
func TestFHIRSourceCountsAsBundle(t *testing.T) {
	cat, _ := measures.Load()
	eng, _ := mappings.Load()
	ev := New(cat, eng)
	o := population.Options{Seed: 5, Patients: 450, Source: "de-f", Country: "DE", Profile: "de-basis", Routine: true}
	bundle := federatetest.PopulationSource(t, o)
	for _, declare := range []bool{true, false} {
		srv := federatetest.PopulationFHIR(t, o, declare)
		src, err := source.NewFHIR(source.Options{ID: o.Source, Country: o.Country, Profile: o.Profile, Kind: source.KindFHIR, BaseURL: srv.URL, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range cat.Measures() {
			req := Request{Measure: m, Period: year2025, Strata: []string{"sex", "age-band-who"}}
			want, err := ev.EvaluateSource(context.Background(), bundle, req)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ev.EvaluateSource(context.Background(), src, req)
			if err != nil {
				t.Fatalf("declare %v, %s: %v", declare, m.ID, err)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("declare %v, %s: FHIR %v, bundle %v", declare, m.ID, got, want)
			}
		}
		pushed, pages := false, 0
		for _, q := range srv.Queries() {
			v, _ := url.ParseQuery(q[strings.Index(q, "?")+1:])
			if v.Get("code") != "" || v.Get("onset-date") != "" || v.Get("vaccine-code") != "" {
				pushed = true
			}
			if strings.HasPrefix(q, "Patient?") && v.Get("_offset") != "" {
				pages++
			}
		}
		if pushed != declare {
			t.Errorf("filters pushed down %v, declared %v", pushed, declare)
		}
		if pages == 0 {
			t.Error("the Patients came in one page: paging is not shown")
		}
	}
}

// Class S data stays out unless a class S stratum is asked for: without
// one, no migration context reaches the criteria.
func TestMigrationContextOnlyForClassSStrata(t *testing.T) {
	_, sensitive, err := stratifiers([]string{"sex", "age-band-5"})
	if err != nil || sensitive {
		t.Fatalf("sex and age are not class S: %v %v", sensitive, err)
	}
	_, sensitive, _ = stratifiers([]string{"length-of-stay"})
	if !sensitive {
		t.Fatal("length of stay is class S")
	}
	for _, bad := range [][]string{{"religion"}, {"sex", "sex"}, {"sex", "age-band-5", "citizenship"}} {
		if _, _, err := stratifiers(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// The auditor reads the table back from the MeasureReport as sent and
// finds exactly what disclosure control released.
func TestPublishedReleaseReadsTheReport(t *testing.T) {
	counts := Counts{"male\x000-4": {3, 3, 1}, "male\x005-14": {40, 38, 20}, "female\x000-4": {25, 25, 12}, "female\x005-14": {12, 11, 2}}
	cat, _ := measures.Load()
	m, _ := cat.Measure("mhp-mcv-coverage")
	for _, strata := range [][]string{{"sex", "age-band-who"}, {"sex"}, nil} {
		c := counts
		if len(strata) < 2 {
			c = Counts{}
			for k, v := range counts {
				key := ""
				if len(strata) == 1 {
					key = strings.Split(k, "\x00")[0]
				}
				if c[key] == nil {
					c[key] = make([]int, 3)
				}
				for i := range v {
					c[key][i] += v[i]
				}
			}
		}
		rep, err := Release(m, year2025, strata, c, disclosure.Rules{K: 10, Rounding: 5})
		if err != nil {
			t.Fatal(err)
		}
		rep.Grain = "quarter"
		b, err := rep.MeasureReport("r", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		got, err := PublishedRelease(b)
		if err != nil {
			t.Fatalf("%v: %v\n%s", strata, err, b)
		}
		if fmt.Sprint(got.Values) != fmt.Sprint(rep.Release.Values) || got.Rules != rep.Release.Rules || !got.Nested {
			t.Errorf("%v: read back\n%+v\nreleased\n%+v", strata, got, rep.Release)
		}
		if err := disclosure.Check(got); err != nil {
			t.Error(err)
		}
	}
}

// The Patient is mapped element by element only where that is exact: not
// when a class S stratum reads the migration context split out of it, and
// not when the shortcuts are off.
func TestPatientSelection(t *testing.T) {
	cat, _ := measures.Load()
	eng, _ := mappings.Load()
	m, _ := cat.Measure("mhp-diabetes-prevalence")
	for _, tc := range []struct {
		strata  []string
		readAll bool
		want    bool
	}{
		{[]string{"sex", "age-band-who"}, false, true},
		{nil, false, true},
		{[]string{"country-of-birth"}, false, true},
		{[]string{"migration-status"}, false, false},
		{[]string{"length-of-stay"}, false, false},
		{[]string{"sex"}, true, false},
	} {
		ev := New(cat, eng)
		ev.readAll = tc.readAll
		sts, sensitive, err := stratifiers(tc.strata)
		if err != nil {
			t.Fatal(err)
		}
		if _, sel := ev.patientSelection(m, sts, sensitive); (sel != nil) != tc.want {
			t.Errorf("%v readAll %v: selection %v, want %v", tc.strata, tc.readAll, sel != nil, tc.want)
		}
	}
}

func TestPatientLists(t *testing.T) {
	long := "Patient/" + strings.Repeat("x", 64)
	var many []string
	for range 100 {
		many = append(many, long)
	}
	tests := []struct {
		name  string
		refs  []string
		limit int
		want  int // lists
	}{
		{"none", nil, 4000, 0},
		{"one", []string{"Patient/a"}, 4000, 1},
		{"short ids fit one list", []string{"Patient/a", "Patient/b", "Patient/c"}, 4000, 1},
		{"a hundred 64-character ids", many, 4000, 2},
		{"a reference longer than the limit", []string{long, long}, 10, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lists := patientLists(tc.refs, tc.limit)
			if len(lists) != tc.want {
				t.Fatalf("%d lists, want %d", len(lists), tc.want)
			}
			var back []string
			for _, l := range lists {
				if len(l) > tc.limit && strings.Contains(l, ",") {
					t.Errorf("a list of %d bytes over the limit %d", len(l), tc.limit)
				}
				back = append(back, strings.Split(l, ",")...)
			}
			if len(tc.refs) > 0 && !slices.Equal(back, tc.refs) {
				t.Errorf("the lists hold %v, want %v", back, tc.refs)
			}
		})
	}
}

func TestHeadPatient(t *testing.T) {
	for ref, want := range map[string]string{
		"Patient/p1":                                 "p1",
		"http://ehr.example/fhir/Patient/p1":         "p1",
		"Patient/p1/_history/3":                      "p1",
		"https://ehr.example/Patient/p-2/_history/1": "p-2",
		"Group/g1": "",
		"":         "",
	} {
		h := head{Subject: &struct{ Reference string }{ref}}
		if got := h.patient(); got != want {
			t.Errorf("subject %q: patient %q, want %q", ref, got, want)
		}
	}
}

// headOf reads what encoding/json reads into a head, for every resource
// of a generated population in each profile, and for hand-made edge cases.
func TestHeadOfAsEncodingJSON(t *testing.T) {
	var docs [][]byte
	for _, profile := range population.Profiles() {
		nd, err := population.NDJSON(population.Options{Seed: 9, Patients: 40, Source: "h", Country: "DE", Profile: profile, Routine: true})
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, bytes.Split(bytes.TrimSpace(nd), []byte("\n"))...)
	}
	for _, s := range []string{
		`{"resourceType":"Condition","subject":null,"code":{"coding":[{"system":"s"},{"code":"c"},{}]}}`,
		`{"resourceType":"Immunization","patient":{"display":"no reference"},"vaccineCode":{}}`,
		`{"resourceType":"Condition","subject":{"reference":"Patient/a"},"subject":{"reference":"Patient/b"}}`,
		`{"resourceType":"Condition","code":{"coding":null,"text":"x"}}`,
	} {
		docs = append(docs, []byte(s))
	}
	for _, doc := range docs {
		var want head
		if err := json.Unmarshal(doc, &want); err != nil {
			t.Fatal(err)
		}
		if got := headOf(doc); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s:\nheadOf %+v\njson   %+v", doc, got, want)
		}
	}
}
