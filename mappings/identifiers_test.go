package mappings

import (
	"slices"
	"testing"
)

func TestIdentifierSystems(t *testing.T) {
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
