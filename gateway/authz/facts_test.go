package authz

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/migrant-health/mhg/conformance"
	"github.com/migrant-health/mhg/conformance/r4"
)

func parseResource(t testing.TB, b []byte) Resource {
	t.Helper()
	cr, err := r4.Parse(b)
	if err != nil {
		t.Fatalf("r4.Parse: %v", err)
	}
	facts, err := FactsOf(cr)
	if err != nil {
		t.Fatal(err)
	}
	return facts
}

func TestFactsOf(t *testing.T) {
	t.Parallel()
	obs := func(extra string) []byte {
		return []byte(`{"resourceType": "Observation", "id": "o1", "status": "final",` + extra +
			`"code": {"coding": [{"system": "http://loinc.org", "code": "8310-5"}]}}`)
	}
	tests := []struct {
		name string
		json []byte
		want Resource
	}{
		{"R4 example patient", readTestdata(t, "resources/patient-example.json"),
			Resource{Type: "Patient", Security: []Coding{}, Category: []string{}, Class: ClassClinical}},
		{"Synthea observation with category", readTestdata(t, "resources/synthea-observation-d732c11b.json"),
			Resource{Type: "Observation", Security: []Coding{}, Category: []string{"http://terminology.hl7.org/CodeSystem/observation-category|vital-signs"}, Class: ClassClinical}},
		{"sensitive label", obs(`"meta": {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HIV"}]},`),
			Resource{Type: "Observation", Security: []Coding{{System: "http://terminology.hl7.org/CodeSystem/v3-ActCode", Code: "HIV"}}, Category: []string{}, Class: ClassClinical}},
		{"MIGSTAT label", obs(`"meta": {"security": [{"system": "` + conformance.CSSensitivity + `", "code": "MIGSTAT"}]},`),
			Resource{Type: "Observation", Security: []Coding{{System: conformance.CSSensitivity, Code: "MIGSTAT"}}, Category: []string{}, Class: ClassSensitive}},
		{"migration context profile", obs(`"meta": {"profile": ["` + conformance.ProfileMigrationContext + `"]},`),
			Resource{Type: "Observation", Security: []Coding{}, Category: []string{}, Class: ClassSensitive}},
		{"refugee question", []byte(`{"resourceType": "Observation", "id": "o2", "status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": "93027-1"}]}, "valueCodeableConcept": {"text": "Y"}}`),
			Resource{Type: "Observation", Security: []Coding{}, Category: []string{}, Class: ClassSensitive}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, parseResource(t, tt.json)); diff != "" {
				t.Errorf("facts (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := FactsOf(nil); !errors.Is(err, ErrNotAResource) {
		t.Errorf("FactsOf(nil) = %v", err)
	}
}

func TestProvisionsOf(t *testing.T) {
	t.Parallel()
	empty := []string{}
	tests := []struct {
		file string
		want []Provision
	}{
		{"opt-in-nl.json", []Provision{
			{ConsentID: "c", Type: "deny", Start: "2024-01", End: "2030-12-31T10:00:00+02:00", ActorCountries: empty, ActorOrgs: empty, Purposes: empty, Classes: empty, SecurityLabels: empty},
			{ConsentID: "c", Type: "permit", Level: 1, ActorCountries: []string{"NL"}, ActorOrgs: empty, Purposes: []string{"TREAT"}, Classes: []string{"Observation"}, SecurityLabels: []string{"MIGSTAT"}},
			{ConsentID: "c", Type: "permit", Level: 1, Start: "2025-03-01", ActorCountries: empty, ActorOrgs: []string{"org-nl-hospital"}, Purposes: empty, Classes: empty, SecurityLabels: empty},
			// Organization/unknown cannot be resolved: the permit grants nothing.
			{ConsentID: "c", Type: "permit", Level: 1, ActorCountries: empty, ActorOrgs: []string{unresolvedActor}, Purposes: empty, Classes: empty, SecurityLabels: empty},
			// The permit restricted by code is left out.
		}},
		{"deny-unresolved.json", []Provision{
			{ConsentID: "c", Type: "permit", ActorCountries: empty, ActorOrgs: empty, Purposes: empty, Classes: empty, SecurityLabels: empty},
			// UA plus an actor that cannot be resolved: the deny applies to all.
			{ConsentID: "c", Type: "deny", Level: 1, ActorCountries: empty, ActorOrgs: empty, Purposes: []string{"COC"}, Classes: empty, SecurityLabels: empty},
			{ConsentID: "c", Type: "unspecified", Level: 1, ActorCountries: empty, ActorOrgs: empty, Purposes: empty, Classes: empty, SecurityLabels: empty},
			{ConsentID: "c", Type: "deny", Level: 2, Start: "2025", ActorCountries: empty, ActorOrgs: empty, Purposes: empty, Classes: empty, SecurityLabels: empty},
		}},
		{"inactive.json", []Provision{}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			cr, err := r4.Parse(readTestdata(t, "consent/"+tt.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := ProvisionsOf(cr, "c")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("provisions (-want +got):\n%s", diff)
			}
		})
	}
	cr, _ := r4.Parse(readTestdata(t, "resources/patient-example.json"))
	if _, err := ProvisionsOf(cr, "x"); !errors.Is(err, ErrNotAResource) {
		t.Errorf("ProvisionsOf(Patient) = %v", err)
	}
}

// A real Consent, normalised, decides as the patient meant: the Dutch
// hospital may see the migration status for treatment, nobody else may.
func TestConsentEndToEnd(t *testing.T) {
	t.Parallel()
	e := builtinEngine(t)
	cr, err := r4.Parse(readTestdata(t, "consent/opt-in-nl.json"))
	if err != nil {
		t.Fatal(err)
	}
	consent, err := ProvisionsOf(cr, "consent-1")
	if err != nil {
		t.Fatal(err)
	}
	status := migrationContext()
	nl := decide(t, e, releaseInput(clinician("NL"), status, "DE", consent...))
	if !nl.Allow || !slices.Contains(nl.Agreements, "de-nl-2024") {
		t.Errorf("NL clinician: %+v", nl)
	}
	ua := decide(t, e, releaseInput(clinician("UA"), status, "DE", consent...))
	if ua.Allow || !slices.Contains(ua.Reasons, "consent.patient-deny") {
		t.Errorf("UA clinician: %+v", ua)
	}
}

// FuzzFactsOf feeds arbitrary resources to FactsOf and ProvisionsOf. It
// fuzzes the protobuf form: the JSON parser (google/fhir jsonformat) is
// the codec's to fuzz, and any resource it can produce is a proto.
func FuzzFactsOf(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "resources", "*.json"))
	consents, _ := filepath.Glob(filepath.Join("testdata", "consent", "*.json"))
	for _, file := range append(files, consents...) {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		cr, err := r4.Parse(b)
		if err != nil {
			f.Fatal(err)
		}
		pb, err := proto.Marshal(cr)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(pb)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cr := &rpb.ContainedResource{}
		if err := proto.Unmarshal(b, cr); err != nil {
			return
		}
		facts, err := FactsOf(cr)
		if err != nil {
			if !errors.Is(err, ErrNotAResource) {
				t.Errorf("FactsOf: %v", err)
			}
			return
		}
		if facts.Type == "" || (facts.Class != ClassClinical && facts.Class != ClassSensitive) || facts.Security == nil || facts.Category == nil {
			t.Errorf("facts = %+v", facts)
		}
		provisions, err := ProvisionsOf(cr, "c")
		if err != nil {
			if !errors.Is(err, ErrNotAResource) {
				t.Errorf("ProvisionsOf: %v", err)
			}
			return
		}
		for _, p := range provisions {
			switch p.Type {
			case "permit", "deny", "unspecified":
			default:
				t.Errorf("provision type %q", p.Type)
			}
			if p.ActorCountries == nil || p.Purposes == nil || p.SecurityLabels == nil {
				t.Errorf("provision with a nil list: %+v", p)
			}
		}
		if _, err := json.Marshal(provisions); err != nil {
			t.Fatal(err)
		}
	})
}
