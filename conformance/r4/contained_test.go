package r4

import (
	"strings"
	"testing"
)

func TestContainedViolations(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // substrings, one per violation
	}{
		{"no contained", `{"resourceType":"Condition","id":"c","subject":{"reference":"Patient/p"}}`, nil},
		{"resolved", `{"resourceType":"AllergyIntolerance","contained":[{"resourceType":"RelatedPerson","id":"rp1"}],"asserter":{"reference":"#rp1"}}`, nil},
		{"dangling", `{"resourceType":"AllergyIntolerance","asserter":{"reference":"#rp1","display":"Mother"}}`,
			[]string{"AllergyIntolerance.asserter.reference: local reference names no contained resource"}},
		{"orphan", `{"resourceType":"AllergyIntolerance","contained":[{"resourceType":"RelatedPerson","id":"rp1"}]}`,
			[]string{"AllergyIntolerance.contained[0] is referenced from nowhere"}},
		{"refers to its container", `{"resourceType":"Observation","contained":[{"resourceType":"Provenance","id":"pv","target":[{"reference":"#"}]}]}`, nil},
		{"referenced by a sibling", `{"resourceType":"MedicationRequest","contained":[{"resourceType":"Medication","id":"m","ingredient":[{"itemReference":{"reference":"#s"}}]},{"resourceType":"Substance","id":"s"}],"medicationReference":{"reference":"#m"}}`, nil},
		{"only self-reference", `{"resourceType":"MedicationRequest","contained":[{"resourceType":"Medication","id":"m","x":{"reference":"#m"}}]}`,
			[]string{"contained[0] is referenced from nowhere"}},
		{"no id", `{"resourceType":"AllergyIntolerance","contained":[{"resourceType":"RelatedPerson"}]}`, []string{"contained[0] has no id"}},
		{"bundle entries", `{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"AllergyIntolerance","asserter":{"reference":"#x"}}}]}`,
			[]string{"Bundle.entry[0]: AllergyIntolerance.asserter.reference"}},
		{"not JSON", `{`, []string{"not a JSON object"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ContainedViolations([]byte(tt.in))
			if len(got) != len(tt.want) {
				t.Fatalf("got %q, want %d violations", got, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("violation %q does not say %q", got[i], w)
				}
			}
		})
	}
}

func TestResolveContained(t *testing.T) {
	in := `{"resourceType":"AllergyIntolerance","id":"a","contained":[{"resourceType":"RelatedPerson","id":"kept","patient":{"reference":"Patient/p"}}],` +
		`"asserter":{"reference":"#gone","display":"Mother"},"recorder":{"reference":"#gone"},"note":[{"authorReference":{"reference":"#kept"},"text":"x"}],"patient":{"reference":"Patient/p"}}`
	out, changed := ResolveContained([]byte(in))
	if strings.Join(changed, ",") != "AllergyIntolerance.asserter.reference,AllergyIntolerance.recorder.reference" {
		t.Errorf("changed %q", changed)
	}
	s := string(out)
	for _, w := range []string{`"asserter":{"display":"Mother"}`, `"recorder":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/data-absent-reason","valueCode":"masked"}]}`, `"reference":"#kept"`} {
		if !strings.Contains(s, w) {
			t.Errorf("result lacks %s: %s", w, s)
		}
	}
	if v := ContainedViolations(out); v != nil {
		t.Errorf("still violates dom-3: %q", v)
	}
	if _, err := Parse(out); err != nil {
		t.Errorf("result is not valid R4: %v", err)
	}
	same := []byte(`{"resourceType":"Condition","id":"c"}`)
	if out, changed := ResolveContained(same); &out[0] != &same[0] || changed != nil {
		t.Error("a resource without local references was rewritten")
	}
}

// ResolveContained never panics, returns JSON for JSON, and leaves no
// local reference that names nothing.
func FuzzResolveContained(f *testing.F) {
	f.Add([]byte(`{"resourceType":"AllergyIntolerance","contained":[{"resourceType":"RelatedPerson","id":"rp1"}],"asserter":{"reference":"#rp1"},"recorder":{"reference":"#x"}}`))
	f.Add([]byte(`{"resourceType":"Bundle","entry":[{"resource":{"reference":"#"}}]}`))
	f.Add([]byte(`{"a":[{"reference":"#a"},{"reference":"#"}],"contained":[{"id":"a"},null,5]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, changed := ResolveContained(b)
		if len(changed) == 0 {
			return
		}
		for _, v := range ContainedViolations(out) {
			if strings.Contains(v, "names no contained resource") && !strings.HasPrefix(v, "Bundle.") {
				t.Fatalf("left a dangling reference in %q: %s", out, v)
			}
		}
		_ = ContainedViolations(b)
	})
}
