package server

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/migrant-health/mhg/conformance"
	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/gateway/config"
)

func (g *gateway) post(t testing.TB, path, token, contentType string, body []byte) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, g.base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if _, err := r4.Parse(b); err != nil {
		t.Fatalf("POST %s: response is not valid R4: %v\n%s", path, err, b)
	}
	r := reply{status: resp.StatusCode, header: resp.Header, body: b}
	_ = json.Unmarshal(b, &r.json)
	return r
}

func TestToMHP(t *testing.T) {
	g := startGateway(t, func(c *config.Config) { c.Server.MaxBodyBytes = 256 << 10 }, Options{})
	tok := g.token(t, "DE", "clinician", "TREAT")
	uk, err := os.ReadFile("../federate/testdata/uk-core-patients.json")
	if err != nil {
		t.Fatal(err)
	}
	var ukBundle struct {
		Entry []struct{ Resource json.RawMessage } `json:"entry"`
	}
	_ = json.Unmarshal(uk, &ukBundle)
	const fhirJSON = "application/fhir+json"

	// A single national Patient without class S data: the MHP Patient.
	r := g.post(t, "/$to-mhp?profile=uk-core", tok, fhirJSON, ukBundle.Entry[2].Resource)
	if r.status != 200 {
		t.Fatalf("single resource: %d %s", r.status, r.body)
	}
	if r.json["resourceType"] != "Bundle" || r.json["type"] != "collection" {
		t.Fatalf("want a collection Bundle: %s", r.body)
	}
	patient := r.entries("")[0]
	if patient["resourceType"] != "Patient" {
		t.Fatalf("first entry %v", patient["resourceType"])
	}
	if issues := conformance.Check(mustMarshal(t, patient)); conformance.HasErrors(issues) {
		t.Fatalf("$to-mhp output is not valid MHP: %v", issues)
	}

	// A whole Bundle: class S data is split off, and what the mapping
	// dropped is reported.
	r = g.post(t, "/$to-mhp?profile=uk-core", tok, fhirJSON, uk)
	if r.status != 200 || r.json["resourceType"] != "Bundle" {
		t.Fatalf("bundle: %d %s", r.status, r.body)
	}
	entries := r.entries("")
	if last := entries[len(entries)-1]; last["resourceType"] != "OperationOutcome" {
		t.Fatalf("the loss report is not the last entry: %v", last["resourceType"])
	}
	if !strings.Contains(string(r.body), conformance.ProfileMigrationContext) {
		t.Fatalf("bundle result lacks the migration context: %.2000s", r.body)
	}

	// The same as a Parameters resource.
	params := `{"resourceType":"Parameters","parameter":[{"name":"profile","valueCode":"uk-core"},{"name":"resource","resource":` + string(ukBundle.Entry[2].Resource) + `}]}`
	if r := g.post(t, "/$to-mhp", tok, fhirJSON, []byte(params)); r.status != 200 {
		t.Fatalf("Parameters input: %d %s", r.status, r.body)
	}

	for _, tt := range []struct {
		name, path, token, ct, body string
		status                      int
	}{
		{"no token", "/$to-mhp?profile=uk-core", "", fhirJSON, string(ukBundle.Entry[2].Resource), 401},
		{"no profile", "/$to-mhp", tok, fhirJSON, string(ukBundle.Entry[2].Resource), 400},
		{"unknown profile", "/$to-mhp?profile=xx-core", tok, fhirJSON, string(ukBundle.Entry[2].Resource), 400},
		{"malformed JSON", "/$to-mhp?profile=uk-core", tok, fhirJSON, `{"resourceType":"Patient",`, 400},
		{"invalid FHIR", "/$to-mhp?profile=uk-core", tok, fhirJSON, `{"resourceType":"Patient","gender":5}`, 400},
		{"empty body", "/$to-mhp?profile=uk-core", tok, fhirJSON, ``, 400},
		{"not mappable", "/$to-mhp?profile=uk-core", tok, fhirJSON, `{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"}}`, 422},
		{"xml", "/$to-mhp?profile=uk-core", tok, "application/fhir+xml", `<Patient/>`, 415},
		{"too big", "/$to-mhp?profile=uk-core", tok, fhirJSON, `{"resourceType":"Patient","id":"` + strings.Repeat("a", 300<<10) + `"}`, 413},
		{"GET", "/$to-mhp?profile=uk-core", tok, "", "", 405},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var r reply
			if tt.name == "GET" {
				r = g.get(t, tt.path, tt.token)
			} else {
				r = g.post(t, tt.path, tt.token, tt.ct, []byte(tt.body))
			}
			if r.status != tt.status || r.json["resourceType"] != "OperationOutcome" {
				t.Fatalf("%d, want %d: %.500s", r.status, tt.status, r.body)
			}
		})
	}
}
