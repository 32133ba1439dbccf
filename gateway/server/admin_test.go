package server

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/migrant-health/mhg/gateway/config"
)

// postRaw posts to a gateway URL relative to its root (not the FHIR base).
func (g *gateway) postRaw(t testing.TB, path, token string, body []byte) (int, map[string]any, []byte) {
	t.Helper()
	root := strings.TrimSuffix(g.base, "/fhir")
	req, err := http.NewRequest(http.MethodPost, root+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m, b
}

func TestAdmin(t *testing.T) {
	t.Parallel()
	de := newNationalServer(t, "de-sample")
	g := startGateway(t, func(c *config.Config) {
		c.Sources = []config.Source{{ID: "de-kbv", Country: "DE", Profile: "de-basis", Kind: config.KindFHIR, BaseURL: de.URL}}
	}, Options{})
	admin := g.token(t, "DE", "admin", "HSYSADMIN")
	clin := g.token(t, "DE", "clinician", "TREAT")

	r := g.get(t, "/Patient?identifier="+aminaPassport, clin)
	pid := r.entries("match")[0]["id"].(string)
	g.get(t, "/Patient/"+pid, clin)
	before := de.requests.Load()
	g.get(t, "/Patient/"+pid, clin)
	if de.requests.Load() != before {
		t.Fatal("the second read was not served from the cache")
	}

	// Forgetting the patient makes the next read go to the source again
	// (the patient's consent included).
	code, body, raw := g.postRaw(t, "/admin/cache/$forget-patient?patient="+pid, admin, nil)
	if code != 200 || body["resourceType"] != "OperationOutcome" {
		t.Fatalf("forget-patient: %d %s", code, raw)
	}
	g.get(t, "/Patient/"+pid, clin)
	if de.requests.Load() == before {
		t.Fatal("after forget-patient the read still came from the cache")
	}

	code, _, raw = g.postRaw(t, "/admin/cache/$purge?source=de-kbv", admin, nil)
	if code != 200 || !strings.Contains(string(raw), "removed") {
		t.Fatalf("purge: %d %s", code, raw)
	}
	after := de.requests.Load()
	g.get(t, "/Patient?identifier="+aminaPassport, clin)
	if de.requests.Load() == after {
		t.Fatal("after the purge the search still came from the cache")
	}

	input := `{"phase":"query","requester":{"client_id":"c","org":"o","country":"US","role":"clinician","purpose_of_use":"TREAT","scopes":["system/*.rs"],"break_glass":false},"action":{"interaction":"read","resource_type":"Patient"},"source":{"id":"de-kbv","country":"DE"},"consent":[]}`
	code, body, raw = g.postRaw(t, "/admin/policy/$explain", admin, []byte(input))
	if code != 200 || !strings.Contains(string(raw), "agreement.cross-border.no-agreement") || body["fired"] == nil {
		t.Fatalf("explain: %d %s", code, raw)
	}
	req, _ := http.NewRequest("GET", strings.TrimSuffix(g.base, "/fhir")+"/admin/policy", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	status, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(status), `"revision":"demo-`) {
		t.Fatalf("policy status: %d %s", resp.StatusCode, status)
	}

	for _, tt := range []struct {
		name, path, token, body string
		status                  int
	}{
		{"clinician may not purge", "/admin/cache/$purge?source=de-kbv", clin, "", 403},
		{"no token", "/admin/cache/$purge?source=de-kbv", "", "", 401},
		{"no source", "/admin/cache/$purge", admin, "", 400},
		{"unknown source", "/admin/cache/$purge?source=zz", admin, "", 404},
		{"bad patient id", "/admin/cache/$forget-patient?patient=a%20b", admin, "", 400},
		{"not a policy input", "/admin/policy/$explain", admin, `{"phase":"query","patient":{"gender":"female"}}`, 400},
		{"admin with a clinical purpose", "/admin/cache/$purge?source=de-kbv", g.token(t, "DE", "admin", "TREAT"), "", 403},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body, raw := g.postRaw(t, tt.path, tt.token, []byte(tt.body))
			if code != tt.status || body["resourceType"] != "OperationOutcome" {
				t.Fatalf("%d, want %d: %s", code, tt.status, raw)
			}
		})
	}
}
