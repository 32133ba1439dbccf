package measures

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/migrant-health/mhg/conformance/r4"
)

// testCase is one file of testdata/cases: a patient's MHP record, a
// period, and what the measure must say about it.
type testCase struct {
	Description      string                      `json:"description"`
	Measure          string                      `json:"measure"`
	Period           struct{ Start, End string } `json:"period"`
	ReportingCountry string                      `json:"reportingCountry"`
	Patient          map[string]any              `json:"patient"`
	Resources        []map[string]any            `json:"resources"`
	Expect           map[string]bool             `json:"expect"`
	Strata           map[string]string           `json:"strata"`
}

func mustLoad(t testing.TB) *Catalogue {
	t.Helper()
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustPeriod(t testing.TB, start, end string) Period {
	t.Helper()
	s, err1 := time.Parse(time.DateOnly, start)
	e, err2 := time.Parse(time.DateOnly, end)
	if err1 != nil || err2 != nil {
		t.Fatalf("period %s..%s", start, end)
	}
	return Period{Start: s, End: e}
}

// TestCases runs every file of testdata/cases: the populations the measure
// puts the patient in, and the strata the catalogue gives.
func TestCases(t *testing.T) {
	c := mustLoad(t)
	files, _ := filepath.Glob("testdata/cases/*.json")
	if len(files) == 0 {
		t.Fatal("no cases")
	}
	covered := map[string]bool{}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var tc testCase
			if err := json.Unmarshal(b, &tc); err != nil {
				t.Fatal(err)
			}
			m, ok := c.Measure(tc.Measure)
			if !ok {
				t.Fatalf("unknown measure %s", tc.Measure)
			}
			covered[m.ID] = true
			// The case is MHP data: every resource must be valid R4.
			for _, r := range append([]map[string]any{tc.Patient}, tc.Resources...) {
				rb, _ := json.Marshal(r)
				if _, err := r4.Parse(rb); err != nil {
					t.Fatalf("case resource is not valid R4: %v", err)
				}
			}
			subj := &Subject{Patient: tc.Patient, Resources: map[string][]map[string]any{}}
			for _, r := range tc.Resources {
				typ, _ := r["resourceType"].(string)
				subj.Resources[typ] = append(subj.Resources[typ], r)
			}
			period := mustPeriod(t, tc.Period.Start, tc.Period.End)
			got := c.Evaluate(m, subj, period)
			if first := c.InInitialPopulation(m, subj, period); first != got[0] {
				t.Errorf("InInitialPopulation %v, Evaluate's initial population %v", first, got[0])
			}
			for i, p := range m.Populations {
				want, ok := tc.Expect[p.Code]
				if !ok {
					t.Fatalf("case does not say whether the patient is in %s", p.Code)
				}
				if got[i] != want {
					t.Errorf("%s: got %v, want %v (%s)", p.Code, got[i], want, tc.Description)
				}
			}
			for code, want := range tc.Strata {
				st, ok := StratifierByCode(code)
				if !ok {
					t.Fatalf("unknown stratifier %s", code)
				}
				if got := st.Category(subj, period, tc.ReportingCountry); got != want {
					t.Errorf("stratum %s: got %q, want %q", code, got, want)
				}
			}
		})
	}
	for _, m := range c.Measures() {
		if !covered[m.ID] {
			t.Errorf("measure %s has no test case", m.ID)
		}
	}
}

// TestBadMeasures: each broken Measure is refused with its file, the line
// and column of the criterion, and what is wrong.
func TestBadMeasures(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"Measure-unknown-function.json", []string{"Measure-unknown-function.json:29:115:", "unknown function exsits()"}},
		{"Measure-unknown-valueset.json", []string{"Measure-unknown-valueset.json:29:58:", "mhp-nothing is not shipped"}},
		{"Measure-syntax.json", []string{"Measure-syntax.json:29:49:", "ends too early"}},
		{"Measure-unknown-constant.json", []string{"Measure-unknown-constant.json:29:49:", "unknown constant %today"}},
		{"Measure-not-compartment.json", []string{"Measure-not-compartment.json:29:28:", "Encounter is not a resource type"}},
		{"Measure-language.json", []string{"Measure-language.json:29:", "language must be text/fhirpath"}},
		{"Measure-proportion-without-numerator.json", []string{"Measure-proportion-without-numerator.json:", "needs the numerator population"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			fsys := fstest.MapFS{}
			sets, _ := fs.Glob(FS, "ValueSet-*.json")
			for _, s := range sets {
				b, _ := fs.ReadFile(FS, s)
				fsys[s] = &fstest.MapFile{Data: b}
			}
			b, err := os.ReadFile(filepath.Join("testdata/bad", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			fsys[tt.file] = &fstest.MapFile{Data: b}
			_, err = LoadFS(fsys)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// The shipped artifacts are valid R4, and the strata catalogue in Go is
// the one the CodeSystem publishes (codes and classes).
func TestArtifacts(t *testing.T) {
	names, _ := fs.Glob(FS, "*.json")
	for _, n := range names {
		b, _ := fs.ReadFile(FS, n)
		if _, err := r4.Parse(b); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
	b, _ := fs.ReadFile(FS, "CodeSystem-mhp-stratifier.json")
	var cs struct {
		URL     string
		Concept []struct {
			Code     string
			Property []struct{ Code, ValueCode string }
		}
	}
	if err := json.Unmarshal(b, &cs); err != nil {
		t.Fatal(err)
	}
	if cs.URL != CSStratifier {
		t.Errorf("code system url %s, want %s", cs.URL, CSStratifier)
	}
	if len(cs.Concept) != len(Strata()) {
		t.Fatalf("code system has %d strata, catalogue %d", len(cs.Concept), len(Strata()))
	}
	for i, st := range Strata() {
		c := cs.Concept[i]
		if c.Code != st.Code || len(c.Property) != 1 || c.Property[0].ValueCode != st.Class {
			t.Errorf("concept %d: %s/%v, catalogue %s/%s", i, c.Code, c.Property, st.Code, st.Class)
		}
	}
}

// Push-downs: what each measure lets a source filter on.
func TestFilters(t *testing.T) {
	c := mustLoad(t)
	tb, _ := c.Measure("mhp-tb-active")
	f := tb.Filters["Condition"]
	if f.CodeElement != "code" || f.DateElement != "onset" || !f.From || !f.To {
		t.Errorf("tb filter %+v", f)
	}
	if !contains(f.Codes, "http://fhir.de/CodeSystem/bfarm/icd-10-gm|A15.0") {
		t.Errorf("tb filter codes %v", f.Codes)
	}
	dm, _ := c.Measure("mhp-diabetes-prevalence")
	if f := dm.Filters["Condition"]; f.DateElement != "" || f.CodeElement != "code" {
		t.Errorf("diabetes: an onset that may be empty must not be pushed down: %+v", f)
	}
	mcv, _ := c.Measure("mhp-mcv-coverage")
	if f := mcv.Filters["Immunization"]; f.CodeElement != "vaccineCode" || f.DateElement != "" {
		t.Errorf("mcv filter %+v", f)
	}
	hiv, _ := c.Measure("mhp-hiv-diagnoses")
	if len(hiv.Sensitivity) != 1 || hiv.Sensitivity[0] != "HIV" {
		t.Errorf("hiv sensitivity %v", hiv.Sensitivity)
	}
}

// Reads: which populations can be decided from the Patient alone.
func TestReads(t *testing.T) {
	c := mustLoad(t)
	for _, tc := range []struct {
		measure string
		reads   [][]string
	}{
		{"mhp-diabetes-prevalence", [][]string{nil, nil, {"Condition"}}},
		{"mhp-mcv-coverage", [][]string{nil, nil, {"Immunization"}}},
		{"mhp-tb-active", [][]string{{"Condition"}}},
	} {
		m, _ := c.Measure(tc.measure)
		if len(m.Populations) != len(tc.reads) {
			t.Fatalf("%s: %d populations", tc.measure, len(m.Populations))
		}
		for i, p := range m.Populations {
			if !slices.Equal(p.Reads, tc.reads[i]) {
				t.Errorf("%s %s reads %v, want %v", tc.measure, p.Code, p.Reads, tc.reads[i])
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestDates(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"2025-03", "2025-03-31", 0},
		{"2025-03-04T10:00:00+01:00", "2025-01-01", 1},
		{"2024", "2025-01-01", -1},
		{"2025-12-31", "2025", 0},
	}
	for _, tt := range tests {
		a, _ := parseDate(tt.a)
		b, _ := parseDate(tt.b)
		if got := a.compare(b); got != tt.want {
			t.Errorf("%s vs %s: %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
	d, _ := parseDate("2024-02-29")
	if got := d.add(quantity{2, "year"}, 1); got != (date{2026, 2, 28, 3}) {
		t.Errorf("2024-02-29 + 2 years = %+v", got)
	}
	d, _ = parseDate("2025-01")
	if got := d.add(quantity{2, "month"}, -1); got != (date{2024, 11, 0, 2}) {
		t.Errorf("2025-01 - 2 months = %+v", got)
	}
	for _, bad := range []string{"", "20x5", "2025-13", "2025-02-30", "2025-01-01X"} {
		if _, ok := parseDate(bad); ok {
			t.Errorf("%q read as a date", bad)
		}
	}
}

// FuzzParse: no expression makes the parser or the checker panic, and what
// compiles evaluates without panicking on a small record.
func FuzzParse(f *testing.F) {
	c := mustLoad(f)
	for _, m := range c.Measures() {
		for _, p := range m.Populations {
			f.Add(p.Expression)
		}
	}
	f.Add("Patient.birthDate <= %periodEnd - 18 years or (1 | 2) contains 3")
	f.Add("'unterminated")
	subj := &Subject{Patient: map[string]any{"resourceType": "Patient", "birthDate": "1990"}, Resources: map[string][]map[string]any{
		"Condition": {{"resourceType": "Condition", "onsetDateTime": "2025-02-01", "code": map[string]any{"coding": []any{map[string]any{"system": "http://snomed.info/sct", "code": "56717001"}}}}},
	}}
	period := Period{Start: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)}
	f.Fuzz(func(t *testing.T, expr string) {
		n, err := parse(expr)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error of type %T", err)
			}
			return
		}
		if check(expr, n, c.sets) != nil {
			return
		}
		m := &Measure{Populations: []Population{{Code: InitialPopulation, prog: n}}}
		c.Evaluate(m, subj, period)
	})
}
