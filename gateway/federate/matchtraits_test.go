package federate

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/migrant-health/mhg/gateway/match"
)

func TestPatientTraits(t *testing.T) {
	t.Parallel()
	in := `{"resourceType":"Patient","name":[{"use":"maiden","family":"Koval","given":["Olena"]},{"use":"official","family":"Shevchenko","given":["Olena","Petrivna"]}],
	"birthDate":"1980-05","gender":"female",
	"identifier":[{"system":"http://hl7.org/fhir/sid/passport-UKR","value":"FT1"},{"system":"https://fhir.migrant-health.org/mhp/sid/mpi","value":"a.x"}],
	"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/patient-birthPlace","valueAddress":{"country":"UKR"}},
	{"url":"http://hl7.org/fhir/StructureDefinition/patient-citizenship","extension":[{"url":"code","valueCodeableConcept":{"coding":[{"system":"urn:iso:std:iso:3166","code":"UA"}]}}]}]}`
	got, err := PatientTraits([]byte(in), "DE")
	if err != nil {
		t.Fatal(err)
	}
	if got.Names[0].Family != "Shevchenko" || len(got.Names) != 2 || got.Names[1].Family != "Koval" {
		t.Errorf("names %v: the official one first, the maiden one kept", got.Names)
	}
	if got.BirthDate != (match.Date{Year: 1980, Month: 5}) || got.Sex != "female" || got.BirthPlace != "UA" || strings.Join(got.Citizenship, ",") != "UA" {
		t.Errorf("traits %+v", got)
	}
	if len(got.Identifiers) != 1 || got.Identifiers[0].Value != "FT1" {
		t.Errorf("identifiers %v: the passport, and never the gateway's pseudonym", got.Identifiers)
	}
	// What the gateway sends a source holds what the traits hold, and
	// reads back the same.
	b, _ := json.Marshal(matchPatient(got))
	again, err := PatientTraits(b, "DE")
	if err != nil || again.BirthDate != got.BirthDate || again.BirthPlace != "UA" || again.Names[0].Given[1] != "Petrivna" {
		t.Errorf("round trip: %+v, %v", again, err)
	}
	for _, bad := range []string{`{"resourceType":"Observation"}`, `{"resourceType":"Patient","birthDate":"14.03.1991"}`, `[`} {
		if _, err := PatientTraits([]byte(bad), "DE"); !errors.Is(err, ErrInvalid) || strings.Contains(err.Error(), "14.03") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func FuzzPatientTraits(f *testing.F) {
	f.Add([]byte(`{"resourceType":"Patient","name":[{"family":"Шевченко","given":["Олена"]}],"birthDate":"1980"}`))
	f.Add([]byte(`{"resourceType":"Patient","name":[{"text":"Amina Seitumerova"}]}`))
	f.Add([]byte(`{"resourceType":"Patient","extension":[{"url":"http://hl7.org/fhir/StructureDefinition/patient-birthPlace"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := PatientTraits(b, "DE")
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		m := match.Default()
		m.Compare(m.Prepare(tr), m.Prepare(tr))
		if _, err := MatchParameters(tr, true, 3); err != nil {
			t.Fatal(err)
		}
	})
}
