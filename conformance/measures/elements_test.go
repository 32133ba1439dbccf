package measures

import (
	"slices"
	"testing"
	"time"

	"github.com/migrant-health/mhg/conformance"
)

// The Patient elements a measure reads are those its criteria name; a
// criterion that reads the Patient otherwise reads all of it.
func TestPatientElements(t *testing.T) {
	c := mustLoad(t)
	for id, want := range map[string][]string{
		"mhp-diabetes-prevalence": {"birthDate"},
		"mhp-mcv-coverage":        {"birthDate"},
		"mhp-tb-active":           nil,
		"mhp-hiv-diagnoses":       nil,
	} {
		m, _ := c.Measure(id)
		got, ok := m.PatientElements()
		if !ok || !slices.Equal(got, want) {
			t.Errorf("%s: %v %v, want %v", id, got, ok, want)
		}
	}
	for expr, want := range map[string][]string{
		"Patient.birthDate <= %periodEnd - 18 years and Patient.gender = 'female'": {"birthDate", "gender"},
		"Patient.exists() and Patient.deceased.empty()":                            {"deceased"},
		"Immunization.where(occurrence <= %subject.birthDate + 2 years).exists()":  {"birthDate"},
		"Condition.where(code.exists()).exists()":                                  nil,
		"Patient.where(gender = 'male').exists()":                                  {"*"},
		"Patient.first().birthDate.exists()":                                       {"*"},
		"(Patient | Patient).count() = 1":                                          {"*"},
		"%subject.exists(gender = 'male')":                                         {"*"},
	} {
		n, err := parse(expr)
		if err != nil {
			t.Fatal(err)
		}
		m := &Measure{Populations: []Population{{prog: n}}}
		got, ok := m.PatientElements()
		if !ok {
			got = []string{"*"}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", expr, got, want)
		}
	}
}

// A stratum computed from a Patient that holds only the elements the
// stratifier names is the stratum computed from the whole Patient.
func TestStratifierPatientElements(t *testing.T) {
	period := Period{Start: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)}
	ext := func(url string, v map[string]any) map[string]any { v["url"] = url; return v }
	patients := []map[string]any{
		{"resourceType": "Patient", "id": "a", "gender": "female", "birthDate": "1990-03-04", "deceasedBoolean": false, "extension": []any{
			ext("http://hl7.org/fhir/StructureDefinition/patient-birthPlace", map[string]any{"valueAddress": map[string]any{"country": "SY"}}),
			ext("http://hl7.org/fhir/StructureDefinition/patient-citizenship", map[string]any{"extension": []any{
				ext("code", map[string]any{"valueCodeableConcept": map[string]any{"coding": []any{map[string]any{"system": conformance.SystemISO3166, "code": "SYR"}}}})}}),
			ext(conformance.ExtArrival, map[string]any{"extension": []any{ext("date", map[string]any{"valueDate": "2022-05-01"})}}),
		}},
		{"resourceType": "Patient", "id": "b", "gender": "unknown", "_birthDate": map[string]any{"extension": []any{}}},
		{"resourceType": "Patient", "id": "c"},
	}
	for _, st := range Strata() {
		for i, p := range patients {
			only := map[string]any{}
			for _, e := range st.PatientElements {
				for k, v := range p {
					if k == e || k == "_"+e {
						only[k] = v
					}
				}
			}
			whole := st.Category(&Subject{Patient: p}, period, "DE")
			part := st.Category(&Subject{Patient: only}, period, "DE")
			if whole != part {
				t.Errorf("%s, patient %d: %s from %v, %s from the whole Patient", st.Code, i, part, st.PatientElements, whole)
			}
		}
	}
}
