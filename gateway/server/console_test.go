package server

import (
	"bytes"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/migrant-health/mhg/gateway/config"
)

// The console is served by `mhg serve` beside the FHIR routes; the banner
// of the development default prints a one-time sign-in link; the
// disclosure report is a FHIR operation for auditors only.
func TestConsoleAndDisclosures(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	g := startGateway(t, func(c *config.Config) { c.Console.TraceURL = "http://jaeger.invalid/trace/{trace_id}" }, Options{Stdout: &out})
	clin := g.token(t, "DE", "clinician", "TREAT")
	auditor := g.token(t, "DE", "auditor", "HCOMPL")

	r := g.get(t, "/Patient?identifier="+aminaPassport, clin)
	var pid string
	for _, e := range r.entries("match") {
		if id, _ := e["id"].(string); strings.HasPrefix(id, "de-sample.") {
			pid = id
		}
	}
	if pid == "" {
		t.Fatal("no DE patient found")
	}
	g.get(t, "/Patient/"+pid, clin)

	// Auditors get the patient's AuditEvents; clinicians a 403.
	if r := g.get(t, "/Patient/"+pid+"/$disclosures", clin); r.status != http.StatusForbidden || !strings.Contains(string(r.body), "disclosure-report.auditors-only") {
		t.Fatalf("a clinician's $disclosures: %d %s", r.status, r.body)
	}
	r = g.get(t, "/Patient/"+pid+"/$disclosures", auditor)
	if r.status != http.StatusOK || r.json["type"] != "searchset" {
		t.Fatalf("$disclosures: %d %s", r.status, r.body)
	}
	entries := r.entries("match")
	if len(entries) < 1 {
		t.Fatalf("%d AuditEvents name the patient", len(entries))
	}
	for _, e := range entries {
		if e["resourceType"] != "AuditEvent" || !strings.Contains(string(mustMarshal(t, e)), "Patient/"+pid) {
			t.Errorf("entry %v does not name the patient", e["id"])
		}
	}
	if r := g.get(t, "/metadata", ""); !strings.Contains(string(r.body), "OperationDefinition/disclosures") {
		t.Error("the CapabilityStatement does not list $disclosures")
	}

	// The banner's link signs in once; the console answers under /console/.
	link := regexp.MustCompile(`http://\S+/console/login/link\?token=\S+`).FindString(out.String())
	if link == "" {
		t.Fatalf("no one-time link in the banner:\n%s", out.String())
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/" {
		t.Fatalf("the one-time link: %s", resp.Status)
	}
	resp, err = client.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the link worked twice: %s", resp.Status)
	}
	resp, err = client.Get(strings.TrimSuffix(g.base, "/fhir") + "/console/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("/console/ without a session: %s", resp.Status)
	}
}
