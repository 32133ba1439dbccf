package server

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/migrant-health/mhg/gateway/config"
	"github.com/migrant-health/mhg/policies"
)

// writeAtomic replaces a file in one step, so that the policy watcher never
// reads half of it.
func writeAtomic(t testing.TB, path, content string) {
	t.Helper()
	tmp := path + ".tmp~"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// readiness is what /readyz says.
type readiness struct {
	code   int
	status string
	checks map[string]any
}

func (g *gateway) readiness(t testing.TB) readiness {
	t.Helper()
	r := g.get(t, "http://"+g.cfg.Listen+"/readyz", "")
	checks, _ := r.json["checks"].(map[string]any)
	status, _ := r.json["status"].(string)
	return readiness{code: r.status, status: status, checks: checks}
}

func (r readiness) check(name string) (status, msg string) {
	c, _ := r.checks[name].(map[string]any)
	status, _ = c["status"].(string)
	msg, _ = c["error"].(string)
	return status, msg
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last: %s", what, timeout, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lastRevision is the policy revision of the newest decision in the audit
// log.
func lastRevision(t testing.TB, g *gateway) string {
	t.Helper()
	evs := auditEvents(t, g)
	ents, _ := evs[len(evs)-1]["entity"].([]any)
	for _, e := range ents {
		details, _ := e.(map[string]any)["detail"].([]any)
		for _, d := range details {
			dm := d.(map[string]any)
			if dm["type"] == "policy-revision" {
				return dm["valueString"].(string)
			}
		}
	}
	t.Fatal("the last AuditEvent names no policy revision")
	return ""
}

var reloadFailures = regexp.MustCompile(`(?m)^mhg_authz_reload_failures_total\{[^}]*stage="([a-z]+)"[^}]*\} (\d+)`)

// failuresByStage reads the reload failure counter from /metrics.
func failuresByStage(t testing.TB, g *gateway) map[string]int {
	t.Helper()
	m := g.get(t, "http://"+g.cfg.Listen+"/metrics", "")
	out := map[string]int{}
	for _, sm := range reloadFailures.FindAllStringSubmatch(string(m.body), -1) {
		n, _ := strconv.Atoi(sm[2])
		out[sm[1]] += n
	}
	return out
}

// A policy edit that does not compile, or whose tests fail, never
// replaces the revision that serves: decisions stay the same, /readyz says
// degraded (not 503) and why, the metrics count the failure. A good edit
// then takes effect without a restart.
//
// Not parallel: the reload metrics go through the process-wide OpenTelemetry
// meter provider, which another gateway started alongside would replace.
func TestPolicyHotReloadKeepsLastGoodRevision(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "policies")
	if err := os.CopyFS(dir, policies.FS); err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(dir, ".manifest")
	writeAtomic(t, manifest, strings.Replace(readFile(t, manifest), `"revision": "demo-2025.2"`, `"revision": "e2e-1"`, 1))
	g := startGateway(t, func(c *config.Config) {
		c.Policy.Dir = dir
		c.Policy.Watch = true
		c.Policy.PollInterval = 50 * time.Millisecond
		c.Cache.Disabled = true
	}, Options{})

	us := g.token(t, "US", "clinician", "TREAT")
	found := g.get(t, "/Patient?identifier=http://hl7.org/fhir/sid/us-ssn|999-68-5158", us)
	if found.status != 200 || len(found.entries("match")) != 1 {
		t.Fatalf("finding Marcos: %d %s", found.status, found.body)
	}
	marcos := "/Patient/" + found.entries("match")[0]["id"].(string)
	de := g.token(t, "DE", "clinician", "TREAT")

	// The decisions the edits must not change, and the one the good edit
	// changes: Germany has no agreement with the United States.
	type outcome struct {
		status int
		rules  []string
		n      int
	}
	observe := func() (amina, us outcome) {
		a := g.get(t, "/Patient?identifier="+aminaPassport, de)
		u := g.get(t, marcos, de)
		return outcome{a.status, a.rules(), len(a.entries("match"))}, outcome{u.status, u.rules(), 0}
	}
	aminaBefore, usBefore := observe()
	if aminaBefore.status != 200 || aminaBefore.n != 3 || usBefore.status != 403 || !slices.Contains(usBefore.rules, "agreement.cross-border.no-agreement") {
		t.Fatalf("before any edit: %+v %+v", aminaBefore, usBefore)
	}
	if rev := lastRevision(t, g); rev != "e2e-1" {
		t.Fatalf("serving revision %q, want e2e-1", rev)
	}
	if r := g.readiness(t); r.code != 200 || r.status != "ready" {
		t.Fatalf("readyz before any edit: %+v", r)
	}

	// stays checks that a rejected edit changed nothing a client sees, and
	// that /readyz says why.
	stays := func(t *testing.T, stage, want string) {
		t.Helper()
		eventually(t, 30*time.Second, "the failed reload shows in /readyz", func() (bool, string) {
			r := g.readiness(t)
			st, msg := r.check("policy-reload")
			return r.status == "degraded" && st == "failing", r.status + " " + st + " " + msg
		})
		r := g.readiness(t)
		if pst, _ := r.check("policy"); r.code != 200 || pst != "ok" {
			t.Fatalf("a failed reload with a good revision serving must not make the gateway unready: %+v", r)
		}
		if _, msg := r.check("policy-reload"); !strings.Contains(msg, "e2e-1") || !strings.Contains(msg, want) {
			t.Errorf("policy-reload says %q; want the serving revision and %q", msg, want)
		}
		amina, usNow := observe()
		if amina.status != aminaBefore.status || amina.n != aminaBefore.n || usNow.status != usBefore.status || !slices.Equal(usNow.rules, usBefore.rules) {
			t.Fatalf("decisions changed after a rejected edit: %+v %+v", amina, usNow)
		}
		if rev := lastRevision(t, g); rev != "e2e-1" {
			t.Fatalf("serving revision %q after a rejected edit", rev)
		}
		if n := failuresByStage(t, g)[stage]; n == 0 {
			t.Errorf("no reload failure counted at stage %s: %v", stage, failuresByStage(t, g))
		}
	}
	recovered := func(t *testing.T) {
		t.Helper()
		eventually(t, 30*time.Second, "the gateway is ready again", func() (bool, string) {
			r := g.readiness(t)
			_, msg := r.check("policy-reload")
			return r.status == "ready", r.status + " " + msg
		})
	}

	mainRego := filepath.Join(dir, "mhg", "authz", "main.rego")
	good := readFile(t, mainRego)
	t.Run("syntax error", func(t *testing.T) {
		writeAtomic(t, mainRego, good+"\nallow if {\n\tthis is not rego\n")
		// Rego that does not parse fails while the revision is read.
		stays(t, "read", "main.rego")
		writeAtomic(t, mainRego, good)
		recovered(t)
	})

	agreements := filepath.Join(dir, "data", "agreements.json")
	deUS := `{
      "id": "de-us-2026",
      "title": "Bilateral agreement between Germany and the United States (test)",
      "kind": "bilateral",
      "parties": ["DE", "US"],
      "purposes": ["TREAT"],
      "data_classes": ["C"],
      "resource_types": ["*"],
      "valid_from": "2026-01-01",
      "valid_until": "2036-12-31",
      "explicit_consent_required": false,
      "break_glass": false,
      "obligations": [],
      "legal_basis": "Test text."
    },
    {
      "id": "de-nl-2024",`
	t.Run("a test the edit breaks", func(t *testing.T) {
		// Adding the United States contradicts the test that pins them as
		// domestic-only: the lawyer has not yet decided which is right.
		writeAtomic(t, agreements, strings.Replace(readFile(t, agreements), `{
      "id": "de-nl-2024",`, deUS, 1))
		writeAtomic(t, manifest, strings.Replace(readFile(t, manifest), `"e2e-1"`, `"e2e-2"`, 1))
		stays(t, "test", "test_us_is_domestic_only")
	})

	t.Run("the fixed edit takes effect", func(t *testing.T) {
		tests := filepath.Join(dir, "mhg", "authz", "agreements_test.rego")
		src := readFile(t, tests)
		old := regexp.MustCompile(`(?s)test_us_is_domestic_only if \{.*?\n\}\n`)
		if !old.MatchString(src) {
			t.Fatal("test_us_is_domestic_only not found")
		}
		src = old.ReplaceAllString(src, "test_us_shares_with_germany_for_treatment if {\n"+
			"\td := authz.decision with input as query(clinician(\"DE\"), \"Patient\", \"US\")\n"+
			"\td.allow\n"+
			"\td.agreements == [\"de-us-2026\"]\n"+
			"}\n")
		// The index test pinned the United States' absence too.
		src = strings.Replace(src, "\tnot data.mhg.index.pairs.US\n", "\tdata.mhg.index.pairs.US.DE.TREAT == [\"de-us-2026\"]\n", 1)
		writeAtomic(t, tests, src)
		recovered(t)
		_, usNow := observe()
		if usNow.status != 200 {
			t.Fatalf("the new agreement did not take effect: %+v", usNow)
		}
		if rev := lastRevision(t, g); rev != "e2e-2" {
			t.Fatalf("serving revision %q, want e2e-2", rev)
		}
		if r := g.readiness(t); r.code != 200 {
			t.Fatalf("readyz: %+v", r)
		}
		if !bytes.Contains(g.get(t, "/Patient?identifier="+aminaPassport, de).body, []byte("de-sample.")) {
			t.Fatal("the good revision lost the German record")
		}
	})
}
