package authz

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/migrant-health/mhg/conformance/r4"
)

const patientJSON = `{
  "resourceType": "Patient", "id": "p1",
  "identifier": [
    {"system": "https://fhir.migrant-health.org/mhp/sid/mpi", "value": "gw-1"},
    {"system": "http://fhir.de/sid/gkv/kvid-10", "value": "A123456789"}
  ],
  "extension": [
    {"url": "http://hl7.org/fhir/StructureDefinition/patient-religion", "valueCodeableConcept": {"text": "x"}},
    {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race", "extension": [{"url": "text", "valueString": "y"}]}
  ],
  "gender": "female", "_gender": {"extension": [{"url": "http://example.org/x", "valueString": "z"}]},
  "address": [{"city": "Berlin"}],
  "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">p</div>"}
}`

func TestEnforce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		obligations []Obligation
		want        func(p map[string]any)
	}{
		{"nothing to do", nil, func(map[string]any) {}},
		{"whole element", []Obligation{{Kind: ObligationRedact, Paths: []string{"Patient.address", "Patient.text"}}}, func(p map[string]any) {
			delete(p, "address")
			delete(p, "text")
			redactedMark(p)
		}},
		{"primitive with its extensions", []Obligation{{Kind: ObligationRedact, Paths: []string{"Patient.gender"}}}, func(p map[string]any) {
			delete(p, "gender")
			delete(p, "_gender")
			redactedMark(p)
		}},
		{"extension by url", []Obligation{{Kind: ObligationRedact, Paths: []string{"Patient.extension('http://hl7.org/fhir/StructureDefinition/patient-religion')"}}}, func(p map[string]any) {
			p["extension"] = p["extension"].([]any)[1:]
			redactedMark(p)
		}},
		{"extension by url filter", []Obligation{{Kind: ObligationRedact, Paths: []string{"Patient.extension[url=http://hl7.org/fhir/StructureDefinition/patient-religion]"}}}, func(p map[string]any) {
			p["extension"] = p["extension"].([]any)[1:]
			redactedMark(p)
		}},
		{"all identifiers but the pseudonym", []Obligation{{Kind: ObligationRedact, Paths: []string{"Patient.identifier[system!=https://fhir.migrant-health.org/mhp/sid/mpi]"}}}, func(p map[string]any) {
			p["identifier"] = p["identifier"].([]any)[:1]
			redactedMark(p)
		}},
		{"list left empty is removed", []Obligation{{Kind: ObligationRedact, Paths: []string{
			"Patient.extension(\"http://hl7.org/fhir/StructureDefinition/patient-religion\")",
			"Patient.extension('http://hl7.org/fhir/us/core/StructureDefinition/us-core-race')",
		}}}, func(p map[string]any) { delete(p, "extension"); redactedMark(p) }},
		{"nested under a filter", []Obligation{{Kind: ObligationRedact, Paths: []string{"Patient.identifier[system=http://fhir.de/sid/gkv/kvid-10].value"}}}, func(p map[string]any) {
			delete(p["identifier"].([]any)[1].(map[string]any), "value")
			redactedMark(p)
		}},
		{"other resource type skipped", []Obligation{{Kind: ObligationRedact, Paths: []string{"Condition.note"}}}, func(map[string]any) {}},
		{"labels added once", []Obligation{
			{Kind: ObligationLabel, Labels: []Coding{{System: "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", Code: "R"}}},
			{Kind: ObligationLabel, Labels: []Coding{{System: "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", Code: "R"}}},
			{Kind: ObligationNotify, Target: "patient"},
		}, func(p map[string]any) {
			p["meta"] = map[string]any{"security": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := enforce([]byte(patientJSON), tt.obligations)
			if err != nil {
				t.Fatal(err)
			}
			var got, want map[string]any
			_ = json.Unmarshal(out, &got)
			canonical, err := enforce([]byte(patientJSON), nil)
			if err != nil {
				t.Fatal(err)
			}
			_ = json.Unmarshal(canonical, &want)
			tt.want(want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if _, err := r4.Parse(out); err != nil {
				t.Errorf("redacted resource is not valid R4: %v", err)
			}
		})
	}
}

// redactedMark adds the REDACTED label a redaction leaves.
// A contained resource gets the redactions of its type, as it would on its
// own; the container is marked REDACTED.
func TestEnforceContained(t *testing.T) {
	t.Parallel()
	in := `{"resourceType":"AllergyIntolerance","id":"a1","patient":{"reference":"Patient/p1"},"asserter":{"reference":"#rp1"},` +
		`"contained":[{"resourceType":"RelatedPerson","id":"rp1","patient":{"reference":"Patient/p1"},"name":[{"family":"Testenko"}],"telecom":[{"system":"phone","value":"+380 1"}]}]}`
	out, err := enforce([]byte(in), []Obligation{{Kind: ObligationRedact, Paths: []string{"RelatedPerson.telecom", "Patient.address"}}})
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	if strings.Contains(s, "+380") || !strings.Contains(s, "Testenko") || !strings.Contains(s, `"#rp1"`) {
		t.Errorf("contained redaction: %s", s)
	}
	if !strings.Contains(s, "REDACTED") {
		t.Errorf("the container is not marked REDACTED: %s", s)
	}
	same, err := enforce([]byte(in), []Obligation{{Kind: ObligationRedact, Paths: []string{"Patient.address"}}})
	if err != nil || strings.Contains(string(same), "REDACTED") || !strings.Contains(string(same), "+380") {
		t.Errorf("a redaction of another type changed the resource: %s %v", same, err)
	}
}

func redactedMark(p map[string]any) {
	p["meta"] = map[string]any{"security": []any{map[string]any{
		"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "REDACTED"}}}
}

func TestEnforceRejects(t *testing.T) {
	t.Parallel()
	for name, path := range map[string]string{
		"type only":       "Patient",
		"unclosed filter": "Patient.extension[url=x",
		"no operator":     "Patient.extension[url]",
		"empty step":      "Patient..address",
		"wildcard":        "*.text",
		"unquoted url":    "Patient.extension(http://x)",
		"unclosed url":    "Patient.extension('http://x'",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := enforce([]byte(patientJSON), []Obligation{{Kind: ObligationRedact, Paths: []string{path}, Rule: "r"}})
			if !errors.Is(err, ErrPath) {
				t.Errorf("err = %v, want ErrPath", err)
			}
		})
	}
	if _, err := enforce([]byte(`{"id": "x"}`), nil); !errors.Is(err, ErrNotAResource) {
		t.Errorf("no resourceType: %v", err)
	}
	if _, err := enforce([]byte(`[1]`), nil); err == nil {
		t.Error("accepted an array")
	}
}

// What the policies oblige, Enforce can carry out: every redact path the
// built-in policies produce parses, and a cross-border Patient loses its
// national identifiers and its religion.
func TestEnforcePolicyObligations(t *testing.T) {
	t.Parallel()
	e := builtinEngine(t)
	d := decide(t, e, releaseInput(clinician("DE"), clinical("Patient", "HIV", "SDV"), "UA"))
	if !d.Allow {
		t.Fatalf("decision: %+v", d)
	}
	out, err := enforce([]byte(patientJSON), d.Obligations)
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, gone := range []string{"A123456789", "patient-religion", "us-core-race", `"text"`} {
		if strings.Contains(s, gone) {
			t.Errorf("%s still in the released resource: %s", gone, s)
		}
	}
	for _, kept := range []string{"gw-1", "NORDSCLCDS"} {
		if !strings.Contains(s, kept) {
			t.Errorf("%s missing from the released resource: %s", kept, s)
		}
	}
}

func FuzzEnforce(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "resources", "*.json"))
	for _, file := range files[:4] {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "Patient.extension('http://hl7.org/fhir/us/core/StructureDefinition/us-core-race')")
	}
	f.Add([]byte(patientJSON), "Patient.identifier[system!=x].value")
	f.Fuzz(func(t *testing.T, resource []byte, path string) {
		out, err := enforce(resource, []Obligation{{Kind: ObligationRedact, Paths: []string{path}}, {Kind: ObligationLabel, Labels: []Coding{{Code: "R"}}}})
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Errorf("invalid JSON out: %s", out)
		}
	})
}

// enforce applies obligations to a resource in R4 JSON, through the R4
// codec as the gateway holds resources, and returns its canonical JSON.
func enforce(resource []byte, obligations []Obligation) ([]byte, error) {
	cr, err := r4.Parse(resource)
	if err != nil {
		return nil, fmt.Errorf("enforce: %w: %v", ErrNotAResource, err)
	}
	if err := Apply(cr, obligations); err != nil {
		return nil, fmt.Errorf("enforce: %w", err)
	}
	return r4.Marshal(cr)
}
