package search

import (
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/migrant-health/mhg/conformance/r4"
)

type res struct {
	typ, id string
	m       proto.Message
}

// loadResources reads testdata/resources.json: a few resources of every
// type, written for these tests (codes from LOINC, SNOMED CT, ICD-10,
// ICD-10-GM, CVX and ATC; the DiagnosticReport dr1 is from Synthea's
// sample data, /work/shared/fixtures/synthea).
func loadResources(t testing.TB) map[string][]res {
	t.Helper()
	b, err := os.ReadFile("testdata/resources.json")
	if err != nil {
		t.Fatal(err)
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	out := map[string][]res{}
	for _, r := range raw {
		cr, err := r4.Parse(r)
		if err != nil {
			t.Fatalf("%s: %v", r[:60], err)
		}
		m := r4.Resource(cr)
		typ := r4.TypeName(m)
		out[typ] = append(out[typ], res{typ, r4.ID(m), m})
	}
	return out
}

// parseQuery feeds a query string to a Query as the search handler does.
func parseQuery(typ, qs string) (*Query, error) {
	v, err := url.ParseQuery(qs)
	if err != nil {
		return nil, err
	}
	q := New(typ)
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, val := range v[k] {
			if k == "_sort" {
				if err := q.ParseSort(val); err != nil {
					return nil, err
				}
				continue
			}
			name, mod, _ := strings.Cut(k, ":")
			if err := q.Parse(name, mod, val); err != nil {
				return nil, err
			}
		}
	}
	return q, nil
}

func TestSearch(t *testing.T) {
	all := loadResources(t)
	for _, tc := range []struct {
		typ, query string
		want       []string // ids, in order when _sort is given
	}{
		// Condition
		{"Condition", "", []string{"c1", "c2", "c3"}},
		{"Condition", "code=E11.9", []string{"c1"}},
		{"Condition", "code=http://hl7.org/fhir/sid/icd-10|E11.9", []string{"c1"}},
		{"Condition", "code=http://fhir.de/CodeSystem/bfarm/icd-10-gm|E11.90", []string{"c1"}},
		{"Condition", "code=http://snomed.info/sct|E11.9", nil},
		{"Condition", "code=|E11.9", nil},
		{"Condition", "code=http://snomed.info/sct|", []string{"c2", "c3"}},
		{"Condition", "code=E11.9,38341003", []string{"c1", "c3"}},
		{"Condition", "code:text=diabetes", []string{"c1"}},
		{"Condition", "code:text=typ-2", []string{"c1"}},
		{"Condition", "code:text=viral", []string{"c2"}},
		{"Condition", "code:text=abetes", nil},
		{"Condition", "code:not=E11.9", []string{"c2", "c3"}},
		{"Condition", "clinical-status=active", []string{"c1"}},
		{"Condition", "clinical-status=http://terminology.hl7.org/CodeSystem/condition-clinical|resolved", []string{"c2"}},
		{"Condition", "verification-status=confirmed", []string{"c1"}},
		{"Condition", "category=problem-list-item", []string{"c1"}},
		{"Condition", "category=encounter-diagnosis", []string{"c2"}},
		{"Condition", "onset-date=2019", []string{"c1"}},
		{"Condition", "onset-date=2019-06", nil}, // a year is not within a month
		{"Condition", "onset-date=ge2020", []string{"c2", "c3"}},
		{"Condition", "onset-date=lt2020", []string{"c1"}},
		{"Condition", "onset-date=gt2020-07-04", []string{"c2"}},
		{"Condition", "onset-date=2020-07-04", []string{"c3"}},
		{"Condition", "onset-date=2020-07-04T07:30:00Z", []string{"c3"}},
		{"Condition", "onset-date=2020-07-04T09:30:00+02:00", []string{"c3"}},
		{"Condition", "onset-date=2020-07-04T09:30:00 02:00", []string{"c3"}}, // '+' decoded as a space
		{"Condition", "onset-date=le2019-12-31", []string{"c1"}},
		{"Condition", "onset-date=ne2019", []string{"c2", "c3"}},
		{"Condition", "onset-date=sa2020-12", []string{"c2"}},
		{"Condition", "onset-date=eb2020", []string{"c1"}},
		{"Condition", "onset-date=ap2021-02-15", []string{"c2"}},
		{"Condition", "onset-date=ge2020&onset-date=lt2021", []string{"c3"}},
		{"Condition", "recorded-date=2019-06", []string{"c1"}},
		{"Condition", "_lastUpdated=ge2024", []string{"c1"}},
		{"Condition", "_lastUpdated=lt2024-01-01", []string{"c2"}},
		{"Condition", "_sort=onset-date", []string{"c1", "c3", "c2"}},
		{"Condition", "_sort=-onset-date", []string{"c2", "c3", "c1"}},
		{"Condition", "_sort=-_lastUpdated", []string{"c1", "c2", "c3"}},
		{"Condition", "_sort=_lastUpdated", []string{"c2", "c1", "c3"}},
		{"Condition", "_sort=recorded-date,-onset-date", []string{"c1", "c2", "c3"}},
		// Observation: vital signs and laboratory by category, LOINC kept
		{"Observation", "category=vital-signs", []string{"o1"}},
		{"Observation", "category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory", []string{"o2", "o3"}},
		{"Observation", "code=http://loinc.org|4548-4", []string{"o2"}},
		{"Observation", "code:text=hemoglobin", []string{"o2"}},
		{"Observation", "status=final", []string{"o1"}},
		{"Observation", "status=entered-in-error", []string{"o3"}},
		{"Observation", "status:not=entered-in-error", []string{"o1", "o2"}},
		{"Observation", "date=2023-11", []string{"o2"}},
		{"Observation", "date=ge2023-11-15", []string{"o2", "o3"}}, // an open Period reaches past any date
		{"Observation", "date=lt2023", []string{"o1"}},
		{"Observation", "date=2022-05-01T08:00:00Z", []string{"o1"}},
		{"Observation", "_sort=-date", []string{"o3", "o2", "o1"}},
		// Immunization
		{"Immunization", "vaccine-code=140", []string{"i1"}},
		{"Immunization", "vaccine-code=http://hl7.org/fhir/sid/cvx|208", []string{"i2"}},
		{"Immunization", "status=completed", []string{"i1"}},
		{"Immunization", "date=2021", []string{"i1"}},
		{"Immunization", "date=ge2000", []string{"i1"}}, // occurrenceString has no date
		{"Immunization", "_sort=date", []string{"i1", "i2"}},
		// AllergyIntolerance
		{"AllergyIntolerance", "category=food", []string{"a1"}},
		{"AllergyIntolerance", "criticality=high", []string{"a1"}},
		{"AllergyIntolerance", "clinical-status=active", []string{"a1"}},
		{"AllergyIntolerance", "verification-status=unconfirmed", []string{"a2"}},
		{"AllergyIntolerance", "code=294505008", []string{"a2"}},
		{"AllergyIntolerance", "date=2018", []string{"a1"}},
		{"AllergyIntolerance", "date=2018-04-10", nil},
		// MedicationStatement
		{"MedicationStatement", "code=http://www.whocc.no/atc|A10BA02", []string{"ms1"}},
		{"MedicationStatement", "code:text=amoxi", []string{"ms2"}},
		{"MedicationStatement", "status=active", []string{"ms1"}},
		{"MedicationStatement", "category=inpatient", []string{"ms2"}},
		{"MedicationStatement", "effective=ge2022", []string{"ms1"}},
		{"MedicationStatement", "effective=2021-02", []string{"ms2"}},
		// MedicationRequest
		{"MedicationRequest", "status=active", []string{"mr1"}},
		{"MedicationRequest", "intent=plan", []string{"mr2"}},
		{"MedicationRequest", "category=outpatient", []string{"mr1"}},
		{"MedicationRequest", "authoredon=ge2020", []string{"mr1"}},
		{"MedicationRequest", "authoredon=lt2020-08-01T12:00:01Z", []string{"mr1", "mr2"}},
		{"MedicationRequest", "code=A10BA02", []string{"mr2"}},
		{"MedicationRequest", "_sort=-authoredon", []string{"mr1", "mr2"}},
		// Procedure
		{"Procedure", "code=80146002", []string{"pr1"}},
		{"Procedure", "category=387713003", []string{"pr1"}},
		{"Procedure", "status=in-progress", []string{"pr2"}},
		{"Procedure", "date=2023-06", nil},
		{"Procedure", "date=ge2023-06", []string{"pr2"}},
		{"Procedure", "date=le2016", []string{"pr1"}},
		// DiagnosticReport
		{"DiagnosticReport", "category=LAB", []string{"dr1"}},
		{"DiagnosticReport", "category=http://terminology.hl7.org/CodeSystem/v2-0074|RAD", []string{"dr2"}},
		{"DiagnosticReport", "code=http://loinc.org|57698-3", []string{"dr1"}},
		{"DiagnosticReport", "code:text=lipid", []string{"dr1"}},
		{"DiagnosticReport", "status=final", []string{"dr1"}},
		{"DiagnosticReport", "date=2012-05-06", []string{"dr1"}},
		{"DiagnosticReport", "issued=ge2024-01-10", []string{"dr2"}},
		{"DiagnosticReport", "_sort=-date", []string{"dr2", "dr1"}},
		// DocumentReference
		{"DocumentReference", "type=http://loinc.org|18842-5", []string{"doc1"}},
		{"DocumentReference", "category=clinical-note", []string{"doc1"}},
		{"DocumentReference", "status=current", []string{"doc1"}},
		{"DocumentReference", "date=2021", []string{"doc2"}},
		{"DocumentReference", "period=2022-09", []string{"doc1"}},
		{"DocumentReference", "_sort=date", []string{"doc2", "doc1"}},
	} {
		t.Run(tc.typ+"?"+tc.query, func(t *testing.T) {
			q, err := parseQuery(tc.typ, tc.query)
			if err != nil {
				t.Fatal(err)
			}
			got := Apply(q, all[tc.typ], func(r res) proto.Message { return r.m })
			var ids []string
			for _, r := range got {
				ids = append(ids, r.id)
			}
			if !slices.Equal(ids, tc.want) {
				t.Errorf("got %v, want %v", ids, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		typ, query string
		want       error
	}{
		{"Condition", "colour=red", ErrUnknown},
		{"Condition", "date=2020", ErrUnknown}, // Condition has onset-date, not date
		{"Patient", "code=x", ErrUnknown},
		{"Condition", "code:exact=x", ErrUnsupported},
		{"Condition", "onset-date:not=2020", ErrUnsupported},
		{"Observation", "status:text=final", ErrUnsupported},
		{"Condition", "code=", ErrInvalid},
		{"Condition", "code=a|b|c", ErrInvalid},
		{"Condition", "code=|", ErrInvalid},
		{"Condition", "code=x\\", ErrInvalid},
		{"Condition", "onset-date=2020-13", ErrInvalid},
		{"Condition", "onset-date=2021-02-30", ErrInvalid},
		{"Condition", "onset-date=xx2020", ErrInvalid},
		{"Condition", "onset-date=20", ErrInvalid},
		{"Condition", "onset-date=2020-01-01T10", ErrInvalid},
		{"Condition", "onset-date=2020-01-01T10:00+25:00", ErrInvalid},
		{"Condition", "_sort=code", ErrUnsupported},
		{"Condition", "_sort=", ErrInvalid},
		{"Condition", "_sort=onset-date,-onset-date,recorded-date,_lastUpdated,onset-date", ErrUnsupported},
		{"Condition", "code=" + strings.Repeat("a,", MaxValues) + "a", ErrUnsupported},
	} {
		t.Run(tc.typ+"?"+tc.query, func(t *testing.T) {
			_, err := parseQuery(tc.typ, tc.query)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			// Messages name the parameter, never the value.
			if strings.Contains(tc.query, "=") && !strings.HasPrefix(tc.query, "_sort") {
				v := tc.query[strings.Index(tc.query, "=")+1:]
				if len(v) > 3 && strings.Contains(err.Error(), v) {
					t.Errorf("message quotes the value: %v", err)
				}
			}
		})
	}
}

func TestEveryParamHasAPathThatResolves(t *testing.T) {
	all := loadResources(t)
	for _, typ := range Types() {
		if len(all[typ]) == 0 {
			t.Errorf("%s: no test resources", typ)
			continue
		}
		for _, p := range Params(typ) {
			if p.Name == "_lastUpdated" && typ != "Condition" {
				continue
			}
			found := false
			for _, r := range all[typ] {
				found = found || len(collect(r.m.ProtoReflect(), p.Paths)) > 0
			}
			if !found {
				t.Errorf("%s %s: no test resource has %v", typ, p.Name, p.Paths)
			}
		}
	}
}
