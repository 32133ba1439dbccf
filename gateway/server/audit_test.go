package server

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/migrant-health/mhg/gateway/audit"
)

func TestAuditTrail(t *testing.T) {
	t.Parallel()
	g := startGateway(t, nil, Options{})
	clin := g.token(t, "DE", "clinician", "TREAT")
	auditor := g.token(t, "DE", "auditor", "HCOMPL")

	search := g.get(t, "/Patient?identifier="+aminaPassport, clin)
	if search.status != 200 {
		t.Fatalf("search %d %s", search.status, search.body)
	}
	var pid string
	for _, p := range search.entries("match") {
		if strings.HasPrefix(p["id"].(string), "de-sample.") {
			pid = p["id"].(string)
		}
	}
	read := g.get(t, "/Patient/"+pid, clin)
	traceID := read.header.Get("X-Request-Id")
	if read.status != 200 || len(traceID) != 32 || !strings.Contains(read.header.Get("Traceparent"), traceID) {
		t.Fatalf("read %d, X-Request-Id %q, traceparent %q", read.status, traceID, read.header.Get("Traceparent"))
	}
	denied := g.get(t, "/Patient/"+pid, g.token(t, "US", "clinician", "TREAT"))
	if denied.status != 403 {
		t.Fatalf("US read %d", denied.status)
	}

	// A clinician may not read the audit trail.
	if r := g.get(t, "/AuditEvent?patient=Patient/"+pid, clin); r.status != 403 {
		t.Fatalf("clinician audit search: %d %s", r.status, r.body)
	}

	r := g.get(t, "/AuditEvent?patient=Patient/"+pid+"&_count=10", auditor)
	if r.status != 200 {
		t.Fatalf("auditor search: %d %s", r.status, r.body)
	}
	events := r.entries("match")
	if len(events) < 2 {
		t.Fatalf("want the read and the refused read of %s, got %d events: %s", pid, len(events), r.body)
	}
	found := false
	outcomes := map[string]bool{}
	for _, ev := range events {
		js := string(mustMarshal(t, ev))
		if strings.Contains(js, traceID) {
			found = true
		}
		outcomes[ev["outcome"].(string)] = true
		if !strings.Contains(js, "TREAT") {
			t.Fatalf("AuditEvent without the purpose of use: %s", js)
		}
	}
	if !found {
		t.Fatalf("no AuditEvent carries the read's trace id %s", traceID)
	}
	if !outcomes["0"] || !outcomes["4"] {
		t.Fatalf("want a success (0) and a refusal (4), got %v", outcomes)
	}

	// The auditor's own search is audited too, and the chain verifies.
	f, err := os.Open(g.cfg.Audit.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := audit.Verify(f)
	if err != nil || !rep.OK() || rep.Records < 5 {
		t.Fatalf("verify: %+v %v", rep, err)
	}

	for _, bad := range []string{"date=yesterday", "date=zz2024", "patient=a&patient=b"} {
		if r := g.get(t, "/AuditEvent?"+bad, auditor); r.status != 400 {
			t.Fatalf("%s: %d %s", bad, r.status, r.body)
		}
	}
	if r := g.get(t, "/AuditEvent?date=ge2020-01-01&date=lt2100&_summary=count", auditor); r.status != 200 || r.json["total"].(float64) < 5 {
		t.Fatalf("date range: %d %s", r.status, r.body)
	}
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAuditLogDownWithholdsData: with the audit log unable to write, no
// patient data leaves; requests that disclose nothing still answer.
func TestAuditLogDownWithholdsData(t *testing.T) {
	t.Parallel()
	g := startGateway(t, nil, Options{})
	clin := g.token(t, "DE", "clinician", "TREAT")
	search := g.get(t, "/Patient?identifier="+aminaPassport, clin)
	if search.status != 200 {
		t.Fatalf("search %d", search.status)
	}
	pid := search.entries("match")[0]["id"].(string)
	if err := g.srv.audit.Close(); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/Patient/" + pid, "/Patient?identifier=" + aminaPassport, "/Condition?patient=" + pid} {
		r := g.get(t, path, clin)
		if r.status != 503 || r.outcomeCode(t) != "transient" || strings.Contains(string(r.body), "Seitumerova") {
			t.Fatalf("%s with the audit log down: %d %s", path, r.status, r.body)
		}
	}
	// Refusals too: no answer about patient data, allowed or refused,
	// leaves without its AuditEvent.
	refusals := []struct{ path, token string }{
		{"/Patient/" + pid, g.token(t, "US", "clinician", "TREAT")},
		{"/Patient?identifier=" + aminaPassport, g.token(t, "DE", "clinician", "HLEGAL")},
		{"/AuditEvent?patient=Patient/" + pid, clin},
	}
	for _, rf := range refusals {
		r := g.get(t, rf.path, rf.token)
		if r.status != 503 || r.outcomeCode(t) != "transient" {
			t.Fatalf("refusal of %s with the audit log down: %d %s", rf.path, r.status, r.body)
		}
	}
	if r := g.get(t, "/metadata", ""); r.status != 200 {
		t.Fatalf("metadata: %d", r.status)
	}
	if r := g.get(t, "http://"+g.cfg.Listen+"/readyz", ""); r.status != 503 {
		t.Fatalf("readyz with the audit log down: %d %s", r.status, r.body)
	}
}
