package console

import (
	"encoding/csv"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/migrant-health/mhg/gateway/audit"
	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/authz"
)

var pages = []string{
	"/console/", "/console/policy", "/console/policy/explain", "/console/audit", "/console/audit/break-glass",
	"/console/audit/chain", "/console/audit/disclosures", "/console/audit/decision",
}

func TestEveryPageNeedsASession(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	b := h.browser()
	for _, p := range append(pages, "/console/statistics") {
		resp, _ := b.get(p)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/login" {
			t.Errorf("GET %s without a session: %s to %q, want 303 to the sign-in page", p, resp.Status, resp.Header.Get("Location"))
		}
	}
	resp, _ := b.do(http.MethodPost, "/console/audit", url.Values{})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST without a session: %s", resp.Status)
	}
}

func TestRolesAsThePolicyDecides(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	workbench := []string{"/console/policy", "/console/policy/explain"}
	desk := []string{"/console/audit", "/console/audit/break-glass", "/console/audit/chain", "/console/audit/disclosures", "/console/audit/decision"}
	for _, tc := range []struct {
		role      string
		forbidden []string
		allowed   []string
	}{
		{"clinician", pages, nil},
		{"researcher", pages, nil},
		{"legal", desk, append([]string{"/console/"}, workbench...)},
		{"auditor", workbench, append([]string{"/console/"}, desk...)},
	} {
		t.Run(tc.role, func(t *testing.T) {
			b := h.browser()
			b.signInAs(tc.role)
			for _, p := range tc.forbidden {
				if resp, body := b.get(p); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "<h1>Forbidden</h1>") {
					t.Errorf("%s: GET %s = %s, want 403", tc.role, p, resp.Status)
				}
			}
			for _, p := range tc.allowed {
				if resp, _ := b.get(p); resp.StatusCode != http.StatusOK {
					t.Errorf("%s: GET %s = %s, want 200", tc.role, p, resp.Status)
				}
			}
		})
	}
	// An auditor cannot start, edit or publish a draft.
	b := h.browser()
	b.signInAs("auditor")
	if resp, _ := b.post("/console/policy/drafts", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("an auditor started a draft: %s", resp.Status)
	}
	if n := len(h.console.drafts.byID); n != 0 {
		t.Errorf("%d drafts exist", n)
	}
	// A legal user reads no audit records and no disclosure report.
	l := h.browser()
	l.signInAs("legal")
	if resp, body := l.post("/console/audit/disclosures", url.Values{"patients": {"de-sample.abc"}}); resp.StatusCode != http.StatusForbidden || strings.Contains(body, "abc") {
		t.Errorf("a legal user drew up a disclosure report: %s", resp.Status)
	}
	if resp, _ := l.post("/console/audit", url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a legal user searched the audit records: %s", resp.Status)
	}
	// Those refusals are audited like refused API calls.
	raws, _, _ := h.audit.Search(t.Context(), audit.Query{Outcome: audit.OutcomeDenied, Agent: "user-legal"})
	if len(raws) < 2 {
		t.Errorf("%d refused console actions audited, want 2", len(raws))
	}
}

func TestCSRFAndCookies(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	b := h.browser()
	resp, _ := b.get(h.console.OneTimeLink(time.Minute))
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == CookieName {
			session = c
		}
	}
	if session == nil || !session.Secure || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.Path != "/" || session.Domain != "" {
		t.Fatalf("session cookie %+v: want Secure, HttpOnly, SameSite=Lax, Path=/, no Domain", session)
	}
	if resp.Header.Get("Location") != "/console/" || strings.Contains(resp.Header.Get("Location"), "token") {
		t.Errorf("after the link: %q", resp.Header.Get("Location"))
	}
	resp, body := b.get("/console/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Policy workbench") || !strings.Contains(body, "Audit desk") {
		t.Fatalf("home: %s", resp.Status)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("headers: CSP %q, Cache-Control %q", csp, resp.Header.Get("Cache-Control"))
	}
	// POSTs without the token, with a wrong one or from another origin
	// are refused.
	for name, tc := range map[string]struct {
		form   url.Values
		origin string
	}{
		"no token":     {url.Values{}, b.origin},
		"wrong token":  {url.Values{"csrf": {"forged"}}, b.origin},
		"other origin": {url.Values{"csrf": {b.csrf()}}, "https://evil.example"},
	} {
		b.origin = tc.origin
		resp, _ := b.do(http.MethodPost, "/console/policy/drafts", tc.form)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %s, want 403", name, resp.Status)
		}
	}
	b.origin = h.srv.URL
	if len(h.console.drafts.byID) != 0 {
		t.Error("a forged POST created a draft")
	}
	if resp, _ := b.post("/console/policy/drafts", nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("with the token: %s", resp.Status)
	}
	// A link signs in once.
	link := h.console.OneTimeLink(time.Minute)
	if resp, _ := h.browser().get(link); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("first use: %s", resp.Status)
	}
	if resp, _ := h.browser().get(link); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("second use: %s", resp.Status)
	}
	// Sign-out ends the session.
	b.post("/console/logout", nil)
	if resp, _ := b.get("/console/"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("after sign-out: %s", resp.Status)
	}
}

func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	now := time.Now()
	h.console.sessions.now = func() time.Time { return now }
	b := h.browser()
	b.signInAs("auditor")
	now = now.Add(29 * time.Minute)
	if resp, _ := b.get("/console/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("after 29 idle minutes: %s", resp.Status)
	}
	now = now.Add(31 * time.Minute)
	if resp, _ := b.get("/console/"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("after 31 idle minutes: %s, want the sign-in page", resp.Status)
	}
}

func TestDraftTestsImpactAndPublish(t *testing.T) {
	t.Parallel()
	key := []byte("a shared secret for signing bundles in this test")
	h := newHarness(t, harnessOptions{approvals: 2, key: key})
	// Recorded decisions: DE<->NL treatment, which the draft will end.
	de, nl, us := clinicianOf("DE"), clinicianOf("NL"), clinicianOf("US")
	var crossBorder []string
	for range 3 {
		crossBorder = append(crossBorder, h.decide(queryOf(de, "NL")).ID)
	}
	h.decide(queryOf(nl, "NL"))
	h.decide(queryOf(us, "DE"))

	b := h.browser()
	b.signInAs("legal")
	resp, _ := b.post("/console/policy/drafts", nil)
	draftURL := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(draftURL, "/console/policy/drafts/") {
		t.Fatalf("new draft: %s %s", resp.Status, draftURL)
	}
	// Remove the Netherlands from the multilateral agreement, and drop the
	// bilateral one, as the form does.
	d := h.console.drafts.byID["1"]
	list, _ := authz.ParseAgreementsFile(d.files[authz.AgreementsPath].Data)
	i := slices.IndexFunc(list, func(a authz.Agreement) bool { return a.ID == "de-nl-ua-2025" })
	form := url.Values{"index": {itoa(i)}, "id": {"de-nl-ua-2025"}, "title": {list[i].Title}, "kind": {"bilateral"},
		"parties": {"DE UA"}, "purposes": list[i].Purposes, "data_classes": list[i].DataClasses, "resource_types": {"*"},
		"valid_from": {list[i].ValidFrom}, "valid_until": {list[i].ValidUntil}, "break_glass": {"on"}, "legal_basis": {list[i].LegalBasis}}
	if resp, body := b.post(draftURL+"/agreement", form); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("save agreement: %s\n%s", resp.Status, body)
	}
	// An invalid agreement is not saved, and the page says why.
	bad := url.Values{"index": {"-1"}, "id": {"Bad Id"}, "title": {"x"}, "kind": {"bilateral"}, "parties": {"DE"}, "valid_from": {"2026-01-01"}, "valid_until": {"2025-01-01"}}
	if resp, body := b.post(draftURL+"/agreement", bad); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "valid_until") {
		t.Errorf("invalid agreement: %s", resp.Status)
	}
	agreements, _ := os.ReadFile("../../policies/data/agreements.json")
	drop := strings.Replace(string(d.files[authz.AgreementsPath].Data), `"id": "de-nl-2024"`, `"id": "de-nl-2024-ended"`, 1)
	drop = strings.Replace(drop, `"valid_until": "2034-12-31"`, `"valid_until": "2024-06-30"`, 1)
	if resp, _ := b.post(draftURL+"/file", url.Values{"path": {authz.AgreementsPath}, "text": {drop}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("save JSON: %s", resp.Status)
	}
	if now, _ := os.ReadFile("../../policies/data/agreements.json"); string(now) != string(agreements) {
		t.Fatal("the draft changed the repository's policies")
	}

	// The tests: a test pinned DE-NL treatment, it now fails at its line.
	b.post(draftURL+"/test", nil)
	_, body := b.get(draftURL)
	if !strings.Contains(body, `id="test-summary"`) || !strings.Contains(body, "FAIL") {
		t.Fatalf("no failing test on the draft page:\n%s", body)
	}
	var fail authz.TestResult
	for _, r := range d.Tests.Tests {
		if r.Outcome == "FAIL" {
			fail = r
			break
		}
	}
	if fail.Line == 0 || !strings.Contains(body, fail.File+":"+itoa(fail.Line)) {
		t.Errorf("the failure is not shown at its line %s:%d", fail.File, fail.Line)
	}
	_, body = b.get(draftURL + "/file?path=" + url.QueryEscape(fail.File))
	if !strings.Contains(body, `<tr id="L`+itoa(fail.Line)+`" class="fail">`) {
		t.Errorf("the file view does not mark line %d", fail.Line)
	}

	// Impact: the three DE->NL queries flip to deny.
	if resp, _ := b.post(draftURL+"/impact", url.Values{"days": {"7"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("impact: %s", resp.Status)
	}
	im := d.Impact
	// The console's own decisions (which desks a session may open) are
	// in the log too; the draft leaves them as they were.
	if im.Replayed < 5 || im.ToDeny != 3 || im.ToAllow != 0 {
		t.Fatalf("impact %+v: want at least 5 replayed, 3 allow->deny", im)
	}
	if im.ByCountry[0].Key != "DE" || im.ByCountry[0].ToDeny != 3 || im.ByRule[0].Key != "agreement.cross-border.not-in-force" {
		t.Errorf("groups: %+v %+v", im.ByCountry, im.ByRule)
	}
	for _, f := range im.Examples {
		if !slices.Contains(crossBorder, f.DecisionID) {
			t.Errorf("flip %s is not a DE->NL decision", f.DecisionID)
		}
	}
	_, body = b.get("/console/policy/explain?id=" + crossBorder[0] + "&draft=1")
	if !strings.Contains(body, "Under the revision in force") || !strings.Contains(body, "Under draft 1") || !strings.Contains(body, "agreement.cross-border.not-in-force") {
		t.Errorf("side-by-side explanation missing:\n%s", body)
	}

	// A draft whose tests fail is not published.
	resp, _ = b.post(draftURL+"/publish", nil)
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("publishing a draft whose tests fail: %s, want 409", resp.Status)
	}
}

func TestPublishNeedsASecondApprover(t *testing.T) {
	t.Parallel()
	key := []byte("a shared secret for signing bundles in this test")
	h := newHarness(t, harnessOptions{approvals: 2, key: key})
	b := h.browser()
	b.signInAs("legal")
	resp, _ := b.post("/console/policy/drafts", nil)
	draftURL := resp.Header.Get("Location")
	d := h.console.drafts.byID["1"]
	manifest := strings.Replace(string(d.files[".manifest"].Data), "demo-2025.2", "demo-2026.1", 1)
	b.post(draftURL+"/file", url.Values{"path": {".manifest"}, "text": {manifest}})
	b.post(draftURL+"/test", nil)
	if !d.Tests.OK(false) || !d.Check.OK() {
		t.Fatalf("tests %v check %v", d.Tests.OK(false), d.Check.Problems)
	}
	b.post(draftURL+"/publish", nil)
	if files, _ := os.ReadDir(h.publish); len(files) != 0 {
		t.Fatalf("published with one approval: %v", files)
	}
	// The same person approving twice is still one approval.
	b.post(draftURL+"/publish", nil)
	if files, _ := os.ReadDir(h.publish); len(files) != 0 {
		t.Fatal("published with one approver twice")
	}
	other := h.browser()
	other.signInAs("legal", "reviewer")
	if resp, _ := other.post(draftURL+"/publish", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("second approval: %s", resp.Status)
	}
	files, _ := filepath.Glob(filepath.Join(h.publish, "*"))
	var patch, tarball string
	for _, f := range files {
		switch {
		case strings.HasSuffix(f, ".patch"):
			patch = f
		case strings.HasSuffix(f, ".tar.gz"):
			tarball = f
		}
	}
	p, _ := os.ReadFile(patch)
	if !strings.Contains(string(p), "--- a/policies/.manifest") || !strings.Contains(string(p), `+  "revision": "demo-2026.1",`) {
		t.Errorf("patch:\n%s", p)
	}
	// The bundle verifies with the key and loads as the gateway loads it.
	f, err := os.Open(tarball)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vc := bundle.NewVerificationConfig(map[string]*bundle.KeyConfig{"mhg-console": {Key: string(key), Algorithm: "HS256"}}, "mhg-console", "", nil)
	bdl, err := bundle.NewReader(f).WithBundleVerificationConfig(vc).Read()
	if err != nil {
		t.Fatalf("the published bundle does not verify: %v", err)
	}
	if _, ok := bdl.Data["data"].(map[string]any)["agreements"]; !ok {
		t.Errorf("the bundle lacks data.data.agreements: %v", bdl.Data)
	}
	// Publishing is audited.
	raws, _, _ := h.audit.Search(t.Context(), audit.Query{Operation: "policy-publish"})
	if len(raws) != 3 {
		t.Errorf("%d publish records, want 3 (two approvals by one, then the publication)", len(raws))
	}
}

func TestAuditDeskAndDisclosures(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	de := clinicianOf("DE")
	emergency := de
	emergency.PurposeOfUse, emergency.BreakGlass = "ETREAT", true
	nl := clinicianOf("NL")
	allow := h.decide(queryOf(de, "DE"))
	deny := h.decide(queryOf(clinicianOf("US"), "DE"))
	first := h.recordAccess(de, "de-sample.p1", map[string]int{"Patient": 1}, allow)
	btg := h.recordAccess(emergency, "de-sample.p1", map[string]int{"Patient": 1, "Condition": 2}, allow)
	h.recordAccess(nl, "de-sample.p2", map[string]int{"Patient": 1}, allow)
	refused := h.recordAccess(clinicianOf("US"), "de-sample.p1", nil, deny)

	b := h.browser()
	b.signInAs("auditor")
	_, body := b.post("/console/audit", url.Values{"country": {"NL"}})
	if !strings.Contains(body, "de-sample.p2") || strings.Contains(body, "de-sample.p1") {
		t.Errorf("filter by country NL shows the wrong records")
	}
	_, body = b.post("/console/audit", url.Values{"break_glass": {"on"}})
	if !strings.Contains(body, btg) || strings.Contains(body, first) || !strings.Contains(body, "http://jaeger.invalid/trace/4bf92f3577b34da6a3ce929d0e0e4736") ||
		!strings.Contains(body, "/console/audit/decision?id="+allow.ID) {
		t.Errorf("break-glass filter, trace and decision links")
	}
	if resp, _ := b.post("/console/audit", url.Values{"patient": {"not an id!"}}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a malformed patient id: %s", resp.Status)
	}
	_, body = b.get("/console/audit/decision?id=" + deny.ID)
	if !strings.Contains(body, "agreement.cross-border.no-agreement") || !strings.Contains(body, "DENY") {
		t.Errorf("decision page:\n%s", body)
	}
	_, body = b.get("/console/audit/chain")
	if !strings.Contains(body, "The chain holds") {
		t.Errorf("chain page:\n%s", body)
	}

	// Review the break-glass access: it leaves the queue; the review is audited.
	_, body = b.get("/console/audit/break-glass")
	if !strings.Contains(body, `id="ev-`+btg+`"`) {
		t.Fatalf("the break-glass access is not in the queue")
	}
	if resp, _ := b.post("/console/audit/break-glass/review", url.Values{"event": {btg}, "note": {"Emergency confirmed with the ward."}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("review: %s", resp.Status)
	}
	_, body = b.get("/console/audit/break-glass")
	if strings.Contains(body, `id="ev-`+btg+`"`) || !strings.Contains(body, "Emergency confirmed with the ward.") {
		t.Errorf("after review:\n%s", body)
	}
	if resp, _ := b.post("/console/audit/break-glass/review", url.Values{"event": {first}, "note": {"x"}}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("reviewing an event that is not break-the-glass: %s", resp.Status)
	}

	// The disclosure report's CSV rows are the patient's AuditEvents.
	resp, csvBody := b.post("/console/audit/disclosures", url.Values{"patients": {"de-sample.p1"}, "format": {"csv"}})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("CSV: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	rows, err := csv.NewReader(strings.NewReader(csvBody)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	raws, _, _ := h.audit.Search(t.Context(), audit.Query{Patient: "de-sample.p1"})
	var want []string
	for i := len(raws) - 1; i >= 0; i-- {
		ev, _ := audit.ParseEvent(raws[i])
		if ev.Operation == "disclosures" && ev.Role == "auditor" {
			continue // the report's own record, written after it was drawn up
		}
		want = append(want, ev.ID)
	}
	var got []string
	for _, r := range rows[1:] {
		got = append(got, r[1])
	}
	if !slices.Equal(got, want) || !slices.Contains(got, refused) {
		t.Errorf("CSV rows %v, want the patient's AuditEvents %v", got, want)
	}
}

func clinicianOf(country string) auth.Requester {
	return auth.Requester{ClientID: "ehr-" + strings.ToLower(country), Org: "org-" + strings.ToLower(country), Country: country,
		Role: "clinician", PurposeOfUse: "TREAT", Scopes: []string{"system/*.rs"}}
}

func queryOf(r auth.Requester, sourceCountry string) authz.Input {
	return authz.Input{Phase: authz.PhaseQuery, Requester: r, Action: authz.Action{Interaction: "read", ResourceType: "Patient"},
		Source: &authz.Source{ID: strings.ToLower(sourceCountry) + "-sample", Country: sourceCountry}, Consent: []authz.Provision{}}
}

func itoa(i int) string { return strconv.Itoa(i) }
