package conformance

import (
	"encoding/json"
	"testing"

	"github.com/migrant-health/mhg/conformance/r4"
)

func TestOperationOutcomeIsValidR4(t *testing.T) {
	cases := []struct {
		name   string
		issues []Issue
		want   int // issues in the rendered outcome
	}{
		{"none", nil, 1},
		{"one with everything", []Issue{{Severity: SeverityError, Code: CodeRequired, Location: "Patient.name", Message: "element has 0 occurrence(s)", Rule: "Patient.name", Diagnostics: "detail"}}, 1},
		{"defaults filled", []Issue{{Message: "bare"}}, 1},
		{"several", Check([]byte(`{"resourceType":"Patient","meta":{"profile":["` + ProfilePatient + `"]}}`)), 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := OperationOutcome(tc.issues)
			if _, err := r4.Parse(b); err != nil {
				t.Fatalf("not valid R4: %v\n%s", err, b)
			}
			var oo struct {
				Issue []struct {
					Severity   string   `json:"severity"`
					Code       string   `json:"code"`
					Expression []string `json:"expression"`
				} `json:"issue"`
			}
			if err := json.Unmarshal(b, &oo); err != nil {
				t.Fatal(err)
			}
			if len(oo.Issue) != tc.want {
				t.Fatalf("got %d issues, want %d: %s", len(oo.Issue), tc.want, b)
			}
			for i, in := range tc.issues {
				if in.Location != "" && (len(oo.Issue[i].Expression) != 1 || oo.Issue[i].Expression[0] != in.Location) {
					t.Errorf("issue %d: expression %v, want %s", i, oo.Issue[i].Expression, in.Location)
				}
			}
		})
	}
}

func TestHasErrors(t *testing.T) {
	if HasErrors(nil) || HasErrors([]Issue{{Severity: SeverityWarning}}) {
		t.Error("warnings are not errors")
	}
	if !HasErrors([]Issue{{Severity: SeverityWarning}, {Severity: SeverityFatal}}) {
		t.Error("fatal is an error")
	}
}
