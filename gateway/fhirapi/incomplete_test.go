package fhirapi

import (
	"fmt"
	"strings"
	"testing"

	"github.com/migrant-health/mhg/gateway/source"
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
	g := newRealGateway(t, source.Options{ID: "de", BaseURL: fs.base(), MaxPages: 2})
	pid, err := g.ids.Encode("de", "Patient", "p1")
	if err != nil {
		t.Fatal(err)
	}
	r := g.do(t, "GET", "/fhir/Condition?patient="+pid, tokDE)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	fhirJSON(t, r)
	checkFullURLs(t, r, "http://gw.test/fhir")
	if got := len(matches(r)); got != 6 {
		t.Errorf("%d conditions, want the 6 of the 3 pages read", got)
	}
	issues := searchOutcomeIssues(t, r)
	if len(issues) != 1 || issues[0]["code"] != "incomplete" || issues[0]["severity"] != "warning" ||
		!strings.Contains(issues[0]["diagnostics"].(string), "truncated after 3 pages") {
		t.Fatalf("want one incomplete warning saying 3 pages were read, got %v", issues)
	}
}

// A source configured as localhost whose next links say 127.0.0.1 (an
// alias, a proxy) pages fully; a next link that leaves the source gives
// the pages read and an incomplete warning.
func TestNextLinksOfAnotherForm(t *testing.T) {
	var res []string
	res = append(res, patientJSON("p1", "P1"))
	for i := range 5 {
		res = append(res, conditionJSON(fmt.Sprintf("c%d", i), "p1"))
	}
	tests := []struct {
		name     string
		base     func(fs *fhirServer) string
		nextBase func(fs *fhirServer) string
		want     int
		warning  string
	}{
		{"alias pages fully", (*fhirServer).aliasBase, (*fhirServer).base, 5, ""},
		{"link away from the source", (*fhirServer).base, func(fs *fhirServer) string { return "http://127.0.0.1:1/elsewhere" }, 1,
			"stop after 1 page; its next page link leads away from the source"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := newFHIRServer(t, 1, res...)
			fs.nextBase = tt.nextBase(fs)
			g := newRealGateway(t, source.Options{ID: "de", BaseURL: tt.base(fs)})
			pid, err := g.ids.Encode("de", "Patient", "p1")
			if err != nil {
				t.Fatal(err)
			}
			r := g.do(t, "GET", "/fhir/Condition?patient="+pid, tokDE)
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			fhirJSON(t, r)
			checkFullURLs(t, r, "http://gw.test/fhir")
			if got := len(matches(r)); got != tt.want {
				t.Errorf("%d conditions, want %d", got, tt.want)
			}
			issues := searchOutcomeIssues(t, r)
			if tt.warning == "" {
				if len(issues) != 0 {
					t.Fatalf("unexpected issues %v", issues)
				}
				return
			}
			if len(issues) != 1 || issues[0]["code"] != "incomplete" || !strings.Contains(issues[0]["diagnostics"].(string), tt.warning) {
				t.Fatalf("want one incomplete warning %q, got %v", tt.warning, issues)
			}
		})
	}
}
