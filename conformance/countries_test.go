package conformance

import (
	"encoding/json"
	"testing"
)

func TestCountryAlpha2(t *testing.T) {
	cases := []struct {
		in     string
		want   string
		wantOK bool
	}{
		{"DE", "DE", true},
		{"DEU", "DE", true},
		{"fra", "FR", true},
		{" CH ", "CH", true},
		{"SYR", "SY", true},
		{"SSD", "SS", true}, // South Sudan (2011)
		{"XK", "", false},   // Kosovo: user-assigned, not ISO 3166-1
		{"UK", "", false},   // the ISO code is GB
		{"D", "", false},
		{"", "", false},
		{"5100", "", false}, // a GBA table 34 code needs a ConceptMap
		{"99134", "", false},
	}
	for _, tc := range cases {
		got, ok := CountryAlpha2(tc.in)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("CountryAlpha2(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.wantOK)
		}
	}
}

// The mhp-country ValueSet and the country table are the same list.
func TestCountryValueSetMatchesTable(t *testing.T) {
	list := Countries()
	if len(list) != 249 {
		t.Errorf("got %d countries, ISO 3166-1 has 249", len(list))
	}
	a, ok := Artifact(VSCountry)
	if !ok {
		t.Fatal("mhp-country ValueSet not shipped")
	}
	var vs vsJSON
	if err := json.Unmarshal(a.JSON, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs.Compose.Include) != 1 || vs.Compose.Include[0].System != SystemISO3166 {
		t.Fatalf("want one include of %s", SystemISO3166)
	}
	inVS := map[string]bool{}
	for _, c := range vs.Compose.Include[0].Concept {
		inVS[c.Code] = true
	}
	for _, c := range list {
		if !inVS[c.Alpha2] {
			t.Errorf("%s is in the table but not the ValueSet", c.Alpha2)
		}
		if got, ok := CountryAlpha2(c.Alpha3); !ok || got != c.Alpha2 {
			t.Errorf("alpha-3 %s maps to %q", c.Alpha3, got)
		}
		delete(inVS, c.Alpha2)
	}
	for code := range inVS {
		t.Errorf("%s is in the ValueSet but not the table", code)
	}
}

func TestCountriesIsACopy(t *testing.T) {
	l := Countries()
	l[0].Alpha2 = "ZZ"
	if Countries()[0].Alpha2 == "ZZ" {
		t.Error("Countries exposes its backing array")
	}
}
