package r4

import (
	"errors"
	"strings"
	"testing"
)

const patient = `{"resourceType":"Patient","id":"p1","birthDate":"1957","name":[{"family":"X"}]}`

func TestParseMarshalRoundTrip(t *testing.T) {
	cr, err := Parse([]byte(patient))
	if err != nil {
		t.Fatal(err)
	}
	if TypeName(cr) != "Patient" || ID(cr) != "p1" {
		t.Fatalf("TypeName %q ID %q", TypeName(cr), ID(cr))
	}
	for name, m := range map[string]func() ([]byte, error){
		"contained": func() ([]byte, error) { return Marshal(cr) },
		"resource":  func() ([]byte, error) { return Marshal(Resource(cr)) },
	} {
		b, err := m()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !strings.Contains(string(b), `"resourceType": "Patient"`) && !strings.Contains(string(b), `"resourceType":"Patient"`) {
			t.Fatalf("%s: not a Patient: %s", name, b)
		}
		if !strings.Contains(string(b), `"1957"`) {
			t.Fatalf("%s: partial date lost: %s", name, b)
		}
	}
}

func TestParseRejects(t *testing.T) {
	for name, in := range map[string]string{
		"not json":      `{`,
		"unknown type":  `{"resourceType":"Spaceship"}`,
		"bad primitive": `{"resourceType":"Patient","gender":5}`,
		"bad date":      `{"resourceType":"Patient","birthDate":"1957-13"}`,
		"unknown field": `{"resourceType":"Patient","colour":"blue"}`,
	} {
		if _, err := Parse([]byte(in)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}
