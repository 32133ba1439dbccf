package fhirapi

import (
	"fmt"
	"strings"
	"testing"

	"github.com/migrant-health/mhg/gateway/config"
)

// A source with more pages than its bound gives the pages read and an
// incomplete warning that says how many, never a transient failure.
func TestTruncatedSearchIsIncomplete(t *testing.T) {
	var res []string
	res = append(res, patientJSON("p1", "P1"))
	for i := range 7 {
		res = append(res, conditionJSON(fmt.Sprintf("c%d", i), "p1"))
	}
	fs := newFHIRServer(t, 2, res...)
	g := newRealGateway(t, config.Source{ID: "de", BaseURL: fs.base(), MaxPages: 2})
	pid, err := g.ids.Encode("de", "Patient", "p1")
	if err != nil {
		t.Fatal(err)
	}
	r := g.do(t, "GET", "/fhir/Condition?patient="+pid, tokDE)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	fhirJSON(t, r)
	if got := len(matches(r)); got != 6 {
		t.Errorf("%d conditions, want the 6 of the 3 pages read", got)
	}
	issues := searchOutcomeIssues(t, r)
	if len(issues) != 1 || issues[0]["code"] != "incomplete" || issues[0]["severity"] != "warning" ||
		!strings.Contains(issues[0]["diagnostics"].(string), "truncated after 3 pages") {
		t.Fatalf("want one incomplete warning saying 3 pages were read, got %v", issues)
	}
}
