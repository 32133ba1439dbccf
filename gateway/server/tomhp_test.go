package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"strings"
	"testing"
	"time"

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
	t.Parallel()
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

// TestToMHPIsDecidedByPolicy: converting is a policy decision like every
// other route, refused to those the policy refuses, and audited.
func TestToMHPIsDecidedByPolicy(t *testing.T) {
	t.Parallel()
	g := startGateway(t, nil, Options{})
	patient, err := os.ReadFile("../federate/testdata/uk-core-patients.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, country, role, purpose string
		status                       int
		rule                         string
	}{
		{"clinician for treatment", "DE", "clinician", "TREAT", 200, ""},
		{"legal proceedings", "DE", "clinician", "HLEGAL", 403, "firewall.query.purpose-forbidden"},
		{"a country in no agreement", "US", "clinician", "TREAT", 403, "conversion.country-not-in-network"},
		{"an auditor", "DE", "auditor", "HCOMPL", 403, "role.auditor.audit-records-only"},
		{"a researcher", "DE", "researcher", "HRESCH", 403, "role.not-allowed-for-class"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := g.post(t, "/$to-mhp?profile=uk-core", g.token(t, tc.country, tc.role, tc.purpose), "application/fhir+json", patient)
			if r.status != tc.status {
				t.Fatalf("%d, want %d: %.300s", r.status, tc.status, r.body)
			}
			if tc.rule != "" && !strings.Contains(string(r.body), tc.rule) {
				t.Fatalf("the refusal does not name %s: %s", tc.rule, r.body)
			}
		})
	}
	// Each conversion and refusal is in the audit log, with its outcome.
	b, err := os.ReadFile(g.cfg.Audit.Log)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), `"to-mhp"`); n < 5 {
		t.Fatalf("%d AuditEvents name the to-mhp operation, want 5:\n%.2000s", n, b)
	}
}

// TestToMHPBounds: past each bound a clean 413 or 429 OperationOutcome,
// decided before the first byte of the answer.
func TestToMHPBounds(t *testing.T) {
	uk, err := os.ReadFile("../federate/testdata/uk-core-patients.json")
	if err != nil {
		t.Fatal(err)
	}
	var bundle struct {
		Entry []json.RawMessage `json:"entry"`
	}
	if err := json.Unmarshal(uk, &bundle); err != nil {
		t.Fatal(err)
	}
	n := len(bundle.Entry)
	g := startGateway(t, func(c *config.Config) {
		c.ToMHP.MaxEntries = n
		c.ToMHP.MaxOutputBytes = 64 << 10
		c.ToMHP.MaxConcurrent = 1
		c.Server.MaxBodyBytes = 64 << 10
		c.ToMHP.MaxBundleBytes = 1 << 20
	}, Options{})
	tok := g.token(t, "DE", "clinician", "TREAT")
	const fhirJSON = "application/fhir+json"

	if r := g.post(t, "/$to-mhp?profile=uk-core", tok, fhirJSON, uk); r.status != 200 {
		t.Fatalf("a Bundle within the bounds: %d %.300s", r.status, r.body)
	}
	// One entry more than the bound.
	more := append(append([]json.RawMessage{}, bundle.Entry...), bundle.Entry[0])
	tooMany, _ := json.Marshal(map[string]any{"resourceType": "Bundle", "type": "collection", "entry": more})
	if r := g.post(t, "/$to-mhp?profile=uk-core", tok, fhirJSON, tooMany); r.status != 413 || r.outcomeCode(t) != "too-long" {
		t.Fatalf("%d entries: %d %.300s", len(more), r.status, r.body)
	}
	// As many entries as allowed, but an answer larger than the bound.
	var big []json.RawMessage
	for len(big) < n {
		big = append(big, bundle.Entry[2])
	}
	bigOut, _ := json.Marshal(map[string]any{"resourceType": "Bundle", "type": "collection", "entry": big})
	g2 := startGateway(t, func(c *config.Config) { c.ToMHP.MaxOutputBytes = 4 << 10 }, Options{})
	if r := g2.post(t, "/$to-mhp?profile=uk-core", g2.token(t, "DE", "clinician", "TREAT"), fhirJSON, bigOut); r.status != 413 || r.outcomeCode(t) != "too-long" {
		t.Fatalf("an answer over the output bound: %d %.300s", r.status, r.body)
	}
	// A body over the Bundle bound.
	huge := `{"resourceType":"Bundle","type":"collection","entry":[` + strings.Repeat(`{"resource":{"resourceType":"Basic","code":{"text":"x"}}},`, 30<<10) + `]}`
	if r := g.post(t, "/$to-mhp?profile=uk-core", tok, fhirJSON, []byte(huge)); r.status != 413 {
		t.Fatalf("a body over the Bundle bound: %d %.300s", r.status, r.body)
	}
	// A single resource over server.max_body_bytes: only Bundles stream.
	single := `{"resourceType":"Patient","id":"p","name":[{"text":"` + strings.Repeat("a", 100<<10) + `"}]}`
	if r := g.post(t, "/$to-mhp?profile=uk-core", tok, fhirJSON, []byte(single)); r.status != 413 {
		t.Fatalf("a single resource over the bound: %d %.300s", r.status, r.body)
	}

	// While one conversion runs (its body still arriving), a second gets
	// 429. The first asks for 100 Continue, which the gateway sends when
	// the conversion, holding its slot, starts reading the body: only then
	// is the second sent, so the two cannot swap places.
	pr, pw := io.Pipe()
	defer pw.Close() // a failure below leaves no request hanging
	holding := make(chan struct{})
	first := make(chan int, 1)
	go func() {
		trace := &httptrace.ClientTrace{Got100Continue: func() { close(holding) }}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace),
			http.MethodPost, g.base+"/$to-mhp?profile=uk-core", pr)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", fhirJSON)
		req.Header.Set("Expect", "100-continue")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	select {
	case <-holding:
	case st := <-first:
		t.Fatalf("the first conversion ended before reading its body: %d", st)
	case <-time.After(time.Minute):
		t.Fatal("the first conversion never started reading its body")
	}
	if _, err := pw.Write(uk[:10]); err != nil {
		t.Fatal(err)
	}
	r := g.post(t, "/$to-mhp?profile=uk-core", tok, fhirJSON, uk)
	if r.status != 429 || r.outcomeCode(t) != "throttled" || r.header.Get("Retry-After") == "" {
		t.Fatalf("a second conversion while the first ran: want 429 throttled with Retry-After, got %d %v %.300s", r.status, r.header, r.body)
	}
	if _, err := pw.Write(uk[10:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if st := <-first; st != 200 {
		t.Fatalf("the first conversion: %d", st)
	}
	// The slot is given back when the first handler returns, just after
	// its last byte reached the client: a 429 in between is allowed.
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := g.post(t, "/$to-mhp?profile=uk-core", tok, fhirJSON, uk)
		if r.status == 200 {
			break
		}
		if r.status != 429 || time.Now().After(deadline) {
			t.Fatalf("after the first ended: %d", r.status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
