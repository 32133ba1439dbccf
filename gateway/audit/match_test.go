package audit

import (
	"strings"
	"testing"
)

// A $match is audited with the kinds of trait used and every candidate
// returned with its grade, and still parses as R4.
func TestRenderMatch(t *testing.T) {
	e := entryFor(OutcomeSuccess)
	e.Operation, e.Patient = "match", ""
	e.MatchTraits = []string{"birthDate", "family", "given"}
	e.Candidates = []Candidate{{Patient: "Patient/nl-sample.abc", Grade: "certain"}, {Patient: "Patient/ua-sample.def", Grade: "probable"}}
	m := parsedEvent(t, e)
	var patients []string
	traits := ""
	for _, x := range m["entity"].([]any) {
		ent := x.(map[string]any)
		what, _ := ent["what"].(map[string]any)
		d := details(ent)
		if g, ok := d[DetailMatchGrade]; ok {
			patients = append(patients, what["reference"].(string)+"="+g)
		}
		if v, ok := d[DetailMatchTraits]; ok {
			traits = v
		}
	}
	if strings.Join(patients, " ") != "Patient/nl-sample.abc=certain Patient/ua-sample.def=probable" {
		t.Errorf("candidates audited as %v", patients)
	}
	if traits != "birthDate,family,given" {
		t.Errorf("traits audited as %q", traits)
	}
	bad := e
	bad.Candidates = []Candidate{{Patient: "Patient/x", Grade: "sure\tenough"}}
	if _, err := Render(bad, "x", testTime, Observer{}); err == nil {
		t.Error("a grade with a tab was accepted")
	}
}
