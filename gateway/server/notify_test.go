package server

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/migrant-health/mhg/gateway/audit"
	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/config"
)

// TestBreakGlassNotifies: an emergency access under an agreement that
// allows break-the-glass is released, audited as such, and notified to the
// configured inbox, naming the AuditEvent and never the patient.
func TestBreakGlassNotifies(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []audit.Notification
	var raw []string
	inbox := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var n audit.Notification
		_ = json.Unmarshal(b, &n)
		mu.Lock()
		got, raw = append(got, n), append(raw, string(b))
		mu.Unlock()
	}))
	t.Cleanup(inbox.Close)
	g := startGateway(t, func(c *config.Config) { c.Audit.NotifyURL = inbox.URL }, Options{})

	clin := g.token(t, "DE", "clinician", "TREAT")
	var nlID string
	for _, p := range g.get(t, "/Patient?identifier="+aminaPassport, clin).entries("match") {
		if id := p["id"].(string); strings.HasPrefix(id, "nl-sample.") {
			nlID = id
		}
	}
	emergency := g.token(t, "DE", "clinician", "ETREAT", func(m *auth.MintOptions) { m.BreakGlass = true })
	r := g.get(t, "/Patient/"+nlID, emergency)
	if r.status != 200 {
		t.Fatalf("break-the-glass read: %d %s", r.status, r.body)
	}
	var n audit.Notification
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		mu.Lock()
		if len(got) > 0 {
			n = got[0]
		}
		mu.Unlock()
		if n.AuditEventID != "" || time.Now().After(deadline) {
			break
		}
	}
	if n.AuditEventID == "" || len(n.Targets) == 0 || !n.BreakGlass || n.Purpose != "ETREAT" || n.RequesterCountry != "DE" {
		t.Fatalf("notification %+v", n)
	}
	mu.Lock()
	body := raw[0]
	mu.Unlock()
	for _, leak := range []string{nlID, "Seitumerova", "FT482913", "1991"} {
		if strings.Contains(body, leak) {
			t.Fatalf("the notification names the patient (%s): %s", leak, body)
		}
	}
	// The AuditEvent it names is in the log, marked break-the-glass.
	auditor := g.token(t, "DE", "auditor", "HCOMPL")
	events := g.get(t, "/AuditEvent?patient=Patient/"+nlID+"&purpose=BTG", auditor).entries("match")
	found := false
	for _, ev := range events {
		if ev["id"] == n.AuditEventID {
			found = true
		}
	}
	if !found {
		t.Fatalf("no break-the-glass AuditEvent %s for the patient among %d", n.AuditEventID, len(events))
	}
	// An ordinary read notifies no one.
	mu.Lock()
	before := len(got)
	mu.Unlock()
	g.get(t, "/Patient/"+nlID, clin)
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != before {
		t.Fatalf("an ordinary read was notified: %v", raw[before:])
	}
}
