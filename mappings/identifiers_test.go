package mappings

import (
	"slices"
	"strings"
	"testing"

	"github.com/migrant-health/mhg/conformance"
)

func TestIdentifierSystems(t *testing.T) {
	t.Parallel()
	e, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]IdentifierSystem{}
	for _, s := range e.IdentifierSystems() {
		if _, dup := got[s.ID]; dup {
			t.Fatalf("entry %s listed twice", s.ID)
		}
		got[s.ID] = s
	}
	tests := []struct {
		id, country, kind, action, prefix string
		systems, types                    []string
	}{
		{id: "passport", kind: "passport", action: IdentifierKeep, prefix: "http://hl7.org/fhir/sid/passport-"},
		{id: "nl-bsn", country: "NL", kind: "national-health-id", action: IdentifierKeep,
			systems: []string{"http://fhir.nl/fhir/NamingSystem/bsn", "urn:oid:2.16.840.1.113883.2.4.6.3"}},
		{id: "us-ssn", country: "US", kind: "social-security", action: IdentifierDrop,
			systems: []string{"http://hl7.org/fhir/sid/us-ssn", "urn:oid:2.16.840.1.113883.4.1"}},
		{id: "ke-refugee-id", country: "KE", kind: "status-revealing", action: IdentifierFirewall,
			types: []string{"https://fhir.dha.go.ke/ig/patient-summary/CodeSystem/identifier-types-cs|REFUGEE-ID"}},
		{id: "medical-record-number", kind: "local", action: IdentifierKeep,
			types: []string{"http://terminology.hl7.org/CodeSystem/v2-0203|MR", "http://terminology.hl7.org/CodeSystem/v2-0203|PI"}},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			s, ok := got[tt.id]
			if !ok {
				t.Fatal("missing")
			}
			if s.Country != tt.country || s.Kind != tt.kind || s.Action != tt.action || s.Prefix != tt.prefix {
				t.Fatalf("got %+v", s)
			}
			if !slices.Equal(s.Systems, tt.systems) || !slices.Equal(s.Types, tt.types) {
				t.Fatalf("systems %q types %q, want %q %q (preferred form first)", s.Systems, s.Types, tt.systems, tt.types)
			}
		})
	}
}

// The status-revealing identifiers the mapping firewalls are exactly those
// the profile's mhp-pat-2 forbids in a Patient: the registry and the
// invariant (its FHIRPath, which other validators run) cannot drift apart.
func TestRegistryAgreesWithProfileInvariant(t *testing.T) {
	t.Parallel()
	e, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	var systems, codes []string
	for _, s := range e.IdentifierSystems() {
		if s.Action != IdentifierFirewall {
			continue
		}
		if s.Scope != ScopeNone {
			t.Errorf("%s is firewalled but may find a person (scope %s)", s.ID, s.Scope)
		}
		systems = append(systems, s.Systems...)
		for _, ty := range s.Types {
			_, code, _ := strings.Cut(ty, "|")
			codes = append(codes, code)
		}
	}
	slices.Sort(systems)
	slices.Sort(codes)
	wantSystems, wantCodes, _ := conformance.StatusRevealing()
	if !slices.Equal(systems, wantSystems) {
		t.Errorf("firewalled systems %q\nmhp-pat-2 systems   %q", systems, wantSystems)
	}
	if !slices.Equal(slices.Compact(codes), wantCodes) {
		t.Errorf("firewalled type codes %q\nmhp-pat-2 type codes %q", codes, wantCodes)
	}
}
