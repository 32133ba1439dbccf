package fhirapi

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/migrant-health/mhg/conformance"
	"github.com/migrant-health/mhg/gateway/federate"
)

func TestParseProfile(t *testing.T) {
	tests := []struct {
		in    string
		ok    bool
		claim string
	}{
		{conformance.ProfileComposition, true, ""},
		{conformance.ProfileComposition + "|0.1.0", true, ""},
		{conformance.ProfileComposition + "|9.9.9", false, ""},
		{conformance.ProfileComposition + "|", false, ""},
		{federate.ProfileIPSComposition, true, federate.ProfileIPSComposition},
		{federate.ProfileIPSComposition + "|2.0.1", true, federate.ProfileIPSComposition},
		{federate.ProfileIPSComposition + "|1.1.0", false, ""},
		{conformance.ProfilePatient, false, ""},
		{"http://example.org/StructureDefinition/Composition", false, ""},
		{"", false, ""},
	}
	for _, tt := range tests {
		claim, ok := parseProfile(tt.in)
		if ok != tt.ok || claim != tt.claim {
			t.Errorf("parseProfile(%q) = %q, %v; want %q, %v", tt.in, claim, ok, tt.claim, tt.ok)
		}
	}
}

func TestParseParameters(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		want   map[string][]string
		status int
	}{
		{"identifier and profile", `{"resourceType":"Parameters","parameter":[{"name":"identifier","valueIdentifier":{"system":"http://s","value":"a|b"}},{"name":"profile","valueCanonical":"http://p"}]}`,
			map[string][]string{"identifier": {`http://s|a\|b`}, "profile": {"http://p"}}, 0},
		{"string and integer values", `{"resourceType":"Parameters","parameter":[{"name":"identifier","valueString":"s|v"},{"name":"_count","valueInteger":5}]}`,
			map[string][]string{"identifier": {"s|v"}, "_count": {"5"}}, 0},
		{"repeated", `{"resourceType":"Parameters","parameter":[{"name":"profile","valueUri":"a"},{"name":"profile","valueUri":"b"}]}`,
			map[string][]string{"profile": {"a", "b"}}, 0},
		{"no parameters", `{"resourceType":"Parameters"}`, map[string][]string{}, 0},
		{"not Parameters", `{"resourceType":"Patient"}`, nil, http.StatusBadRequest},
		{"not JSON", `identifier=x`, nil, http.StatusBadRequest},
		{"not valid R4", `{"resourceType":"Parameters","parameter":[{"name":"x","valueInteger":"five"}]}`, nil, http.StatusBadRequest},
		{"nested parts", `{"resourceType":"Parameters","parameter":[{"name":"x","part":[{"name":"y","valueString":"z"}]}]}`, nil, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, e := parseParameters([]byte(tt.body))
			if tt.status != 0 {
				if e == nil || e.Status != tt.status {
					t.Fatalf("got %v %v, want status %d", got, e, tt.status)
				}
				if strings.Contains(e.Message, "five") {
					t.Fatal("the message quotes the body")
				}
				return
			}
			if e != nil {
				t.Fatal(e)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if !slices.Equal(got[k], v) {
					t.Fatalf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestWholeNumber(t *testing.T) {
	for in, want := range map[string]int{"0": 0, "7": 7, "000012": 12, "123456789": 123456789} {
		if n, ok := wholeNumber(in); !ok || n != want {
			t.Errorf("wholeNumber(%q) = %d, %v", in, n, ok)
		}
	}
	for _, in := range []string{"", "-1", "1e3", "1234567890", " 1", "٣"} {
		if _, ok := wholeNumber(in); ok {
			t.Errorf("wholeNumber(%q) accepted", in)
		}
	}
}

// FuzzParseProfile: any profile parameter is accepted only as one of the
// two Composition canonicals, and never panics.
func FuzzParseProfile(f *testing.F) {
	for _, s := range []string{conformance.ProfileComposition, conformance.ProfileComposition + "|0.1.0", federate.ProfileIPSComposition + "|2.0.1", "|", "x|y|z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		claim, ok := parseProfile(in)
		if !ok {
			return
		}
		u, _, _ := strings.Cut(in, "|")
		if u != conformance.ProfileComposition && u != federate.ProfileIPSComposition {
			t.Fatalf("accepted %q", in)
		}
		if claim != "" && claim != federate.ProfileIPSComposition {
			t.Fatalf("claims %q", claim)
		}
	})
}

// FuzzParseParameters: a POSTed body is parsed or refused with a 4xx,
// never a panic, and values come back only from valid R4.
func FuzzParseParameters(f *testing.F) {
	for _, s := range []string{
		`{"resourceType":"Parameters","parameter":[{"name":"identifier","valueIdentifier":{"system":"http://s","value":"v"}}]}`,
		`{"resourceType":"Parameters","parameter":[{"name":"profile","valueCanonical":"http://p|1"}]}`,
		`{"resourceType":"Parameters","parameter":[{"name":"x","resource":{"resourceType":"Patient"}}]}`,
		`{"resourceType":"Parameters","parameter":null}`, `[]`, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, e := parseParameters(body)
		if e != nil {
			if e.Status < 400 || e.Status >= 500 {
				t.Fatalf("status %d for bad input", e.Status)
			}
			return
		}
		if got == nil {
			t.Fatal("no error and no parameters")
		}
	})
}
