package mappings

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestNewIdentityRegistryRejects(t *testing.T) {
	t.Parallel()
	good := IdentifierSystem{ID: "x", Systems: []string{"http://x.example/id"}, Scope: ScopeDomestic, Country: "DE"}
	tests := []struct {
		name string
		edit func(*IdentifierSystem)
		want string
	}{
		{"no id", func(s *IdentifierSystem) { s.ID = "" }, "has no id"},
		{"bad scope", func(s *IdentifierSystem) { s.Scope = "everywhere" }, "scope must be"},
		{"nothing to match", func(s *IdentifierSystem) { s.Systems = nil }, "give systems"},
		{"country not alpha-2", func(s *IdentifierSystem) { s.Country = "DEU" }, "not an ISO 3166-1 alpha-2"},
		{"partner not alpha-2", func(s *IdentifierSystem) { s.Partners = []string{"Netherlands"} }, "not an ISO 3166-1 alpha-2"},
		{"system with a bar", func(s *IdentifierSystem) { s.Systems = []string{"a|b"} }, "holds '|'"},
		{"type without code", func(s *IdentifierSystem) { s.Types = []string{"http://t.example"} }, "is not system|code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := good
			tt.edit(&s)
			_, err := NewIdentifierRegistry([]IdentifierSystem{s})
			if !errors.Is(err, ErrRegistry) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
		})
	}
	t.Run("contradictions are all reported", func(t *testing.T) {
		_, err := NewIdentifierRegistry([]IdentifierSystem{
			good, good,
			{ID: "y", Systems: []string{"http://x.example/id"}, Scope: ScopeNone},
			{ID: "p1", Prefix: "http://p.example/", Scope: ScopeCrossBorder},
			{ID: "p2", Prefix: "http://p.example/sub", Scope: ScopeCrossBorder},
		})
		for _, want := range []string{"listed twice", "already claimed by x", "prefix overlaps that of p1"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("err %v lacks %q", err, want)
			}
		}
	})
}

func TestEngineIdentifierRegistry(t *testing.T) {
	t.Parallel()
	eng, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	reg, err := eng.IdentifierRegistry()
	if err != nil {
		t.Fatal(err)
	}
	scope := map[string]string{}
	for _, s := range reg.Systems() {
		scope[s.ID] = s.Scope
	}
	for id, want := range map[string]string{
		"passport": ScopeCrossBorder, "ke-passport": ScopeCrossBorder, "passport-type": ScopeCrossBorder,
		"nl-bsn": ScopeDomestic, "de-kvid-gkv": ScopeDomestic, "medical-record-number": ScopeDomestic,
		"sa-iqama": ScopeNone, "ke-refugee-id": ScopeNone, "us-ssn": ScopeNone, "fr-ins-nia": ScopeNone,
	} {
		if scope[id] != want {
			t.Errorf("%s: scope %q, want %q", id, scope[id], want)
		}
	}
}

func TestIdentifierMatch(t *testing.T) {
	t.Parallel()
	eng, _ := Load()
	systems := WithIdentifierSystems(eng.IdentifierSystems(),
		// A deployment's additions: a UNHCR case number crosses borders, and
		// a bilateral agreement lets Germany use the Dutch BSN.
		IdentifierSystem{ID: "unhcr-case", Systems: []string{"https://unhcr.example/progres/case"}, Scope: ScopeCrossBorder},
		IdentifierSystem{ID: "nl-bsn", Systems: []string{"http://fhir.nl/fhir/NamingSystem/bsn", "urn:oid:2.16.840.1.113883.2.4.6.3"},
			Country: "NL", Scope: ScopeDomestic, Partners: []string{"DE"}},
	)
	reg, err := NewIdentifierRegistry(systems)
	if err != nil {
		t.Fatal(err)
	}
	const ppn = "http://terminology.hl7.org/CodeSystem/v2-0203|PPN"
	tests := []struct {
		name          string
		system, value string
		types         []string
		home          string
		ok            bool
		key           string
		forms         []string
		countries     []string
	}{
		{name: "passport", system: "http://hl7.org/fhir/sid/passport-UKR", value: "FT482913", ok: true,
			key: "http://hl7.org/fhir/sid/passport-UKR|FT482913", forms: []string{"http://hl7.org/fhir/sid/passport-UKR|FT482913"}},
		{name: "BSN in its OID form is the URL one", system: "urn:oid:2.16.840.1.113883.2.4.6.3", value: "999991383", ok: true,
			key:       "http://fhir.nl/fhir/NamingSystem/bsn|999991383",
			forms:     []string{"http://fhir.nl/fhir/NamingSystem/bsn|999991383", "urn:oid:2.16.840.1.113883.2.4.6.3|999991383"},
			countries: []string{"NL", "DE"}},
		{name: "UNHCR case number", system: "https://unhcr.example/progres/case", value: "481-00012", ok: true,
			key: "https://unhcr.example/progres/case|481-00012", forms: []string{"https://unhcr.example/progres/case|481-00012"}},
		{name: "KVNR is domestic", system: "http://fhir.de/sid/gkv/kvid-10", value: "A1", ok: true,
			key: "http://fhir.de/sid/gkv/kvid-10|A1", forms: []string{"http://fhir.de/sid/gkv/kvid-10|A1"}, countries: []string{"DE"}},
		{name: "passport by type, any system", system: "urn:oid:1.2.3", value: "X", types: []string{ppn}, ok: true,
			key: "urn:oid:1.2.3|X", forms: []string{"urn:oid:1.2.3|X"}},
		{name: "record number belongs to its home", system: "https://h.example/mrn", value: "7",
			types: []string{"http://terminology.hl7.org/CodeSystem/v2-0203|MR"}, home: "NL", ok: true,
			key: "https://h.example/mrn|7", forms: []string{"https://h.example/mrn|7"}, countries: []string{"NL"}},
		{name: "record number without a home", system: "https://h.example/mrn", value: "7",
			types: []string{"http://terminology.hl7.org/CodeSystem/v2-0203|MR"}},
		{name: "unknown system, domestic to home", system: "https://x.example", value: "1", home: "DE", ok: true,
			key: "https://x.example|1", forms: []string{"https://x.example|1"}, countries: []string{"DE"}},
		{name: "unknown system, no home", system: "https://x.example", value: "1"},
		{name: "status-revealing system", system: "http://nphies.sa/identifier/iqama", value: "1", home: "SA"},
		{name: "status-revealing type wins over a passport system", system: "http://hl7.org/fhir/sid/passport-KEN", value: "1",
			types: []string{"https://fhir.dha.go.ke/ig/patient-summary/CodeSystem/identifier-types-cs|REFUGEE-ID"}},
		{name: "dropped identifier", system: "http://hl7.org/fhir/sid/us-ssn", value: "1", home: "US"},
		{name: "no value", system: "http://hl7.org/fhir/sid/passport-UKR"},
		{name: "search syntax is escaped", system: "https://x.example", value: `a,b|c$d\e`, home: "DE", ok: true,
			key: `https://x.example|a,b|c$d\e`, forms: []string{`https://x.example|a\,b\|c\$d\\e`}, countries: []string{"DE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, ok := reg.Match(tt.system, tt.value, tt.types, tt.home)
			if ok != tt.ok {
				t.Fatalf("ok %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			if id.Key != tt.key || !slices.Equal(id.Forms, tt.forms) || !slices.Equal(id.Countries, tt.countries) {
				t.Fatalf("got %+v\nwant key %q forms %q countries %q", id, tt.key, tt.forms, tt.countries)
			}
		})
	}
}
