package console

import (
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/migrant-health/mhg/gateway/audit"
)

// The console driven as people drive it, in a real headless Chromium
// (Debian's chromium; .ci/run installs it), with axe-core checking every
// page for accessibility and a screenshot of every page written to
// testdata/screenshots (not committed; MHG_SCREENSHOTS names another
// folder).

// axeScript is axe-core, pinned in testdata/browser (make test installs it).
const axeScript = "testdata/browser/node_modules/axe-core/axe.min.js"

type run struct {
	t     *testing.T
	ctx   context.Context
	h     *harness
	shots string
	axe   string
}

func newRun(t *testing.T, h *harness) *run {
	t.Helper()
	// Without the browser or axe-core the test is skipped, so that `go
	// test ./...` passes on a fresh clone; `make test` sets
	// MHG_REQUIRE_CLIENTS=1 after installing axe-core (and .ci/run
	// installs chromium), which makes their absence a failure.
	missing := t.Skipf
	if os.Getenv("MHG_REQUIRE_CLIENTS") != "" {
		missing = t.Fatalf
	}
	exe, err := exec.LookPath("chromium")
	if err != nil {
		missing("chromium is not installed (apt-get install chromium; .ci/run does)")
		return nil
	}
	axe, err := os.ReadFile(axeScript)
	if err != nil {
		missing("axe-core is not installed: run `make browser-deps` (make test does): %v", err)
		return nil
	}
	shots := os.Getenv("MHG_SCREENSHOTS")
	if shots == "" {
		shots = filepath.Join("testdata", "screenshots")
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(cancel3)
	// Start the browser with the run's own context: a step's shorter
	// context must not own it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return &run{t: t, ctx: ctx, h: h, shots: shots, axe: string(axe)}
}

func (r *run) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		r.t.Fatalf("%s: %v", what, err)
	}
}

// get runs an action that reads something.
func get[T any](r *run, what string, a chromedp.Action[T]) T {
	r.t.Helper()
	v, err := chromedp.Run(r.ctx, a)
	if err != nil {
		r.t.Fatalf("%s: %v", what, err)
	}
	return v
}

func (r *run) text(sel string) string {
	r.t.Helper()
	return get(r, "read "+sel, chromedp.Text(chromedp.CSS(sel)))
}

// page checks the page that is open: its title, no serious or critical
// accessibility violation, and a screenshot.
func (r *run) page(name, h1 string) {
	r.t.Helper()
	if got := r.text("h1"); got != h1 {
		r.t.Fatalf("%s: heading %q, want %q", name, got, h1)
	}
	shot := get(r, "screenshot "+name, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(r.shots, name+".png"), shot, 0o644); err != nil {
		r.t.Fatal(err)
	}
	type violation struct {
		ID     string `json:"id"`
		Impact string `json:"impact"`
		Help   string `json:"help"`
		Nodes  []struct {
			Target []string `json:"target"`
		} `json:"nodes"`
	}
	run := r.axe + `;axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}).then(res => res.violations)`
	violations := get(r, "axe on "+name, chromedp.Evaluate[[]violation](run, chromedp.EvalAwaitPromise))
	for _, v := range violations {
		if v.Impact == "serious" || v.Impact == "critical" {
			var where []string
			for _, n := range v.Nodes {
				where = append(where, strings.Join(n.Target, " "))
			}
			r.t.Errorf("%s: accessibility: %s (%s): %s at %v", name, v.ID, v.Impact, v.Help, where)
		}
	}
}

func (r *run) open(path string) {
	r.t.Helper()
	r.do("open "+path, chromedp.Navigate(r.h.srv.URL+path))
}

func TestBrowser(t *testing.T) {
	t.Parallel()
	idp, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idp.Shutdown() })
	cfg := idp.Config()
	h := newHarness(t, harnessOptions{oidc: OIDC{Issuer: cfg.Issuer, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
		Scopes: []string{"profile", "email", "groups"}, RoleClaim: "groups"}})
	idp.QueueUser(&mockoidc.MockUser{Subject: "lawyer-1", Email: "lawyer@ministry.example", PreferredUsername: "lawyer",
		Groups: []string{"legal"}, EmailVerified: true})

	// What happened before: DE->NL treatment queries (allowed under
	// de-nl-2024 and de-nl-ua-2025), accesses to two patients, one of them
	// in an emergency, one refused.
	de, nl, us := clinicianOf("DE"), clinicianOf("NL"), clinicianOf("US")
	emergency := de
	emergency.PurposeOfUse, emergency.BreakGlass = "ETREAT", true
	var crossBorder []string
	for range 3 {
		crossBorder = append(crossBorder, h.decide(queryOf(de, "NL")).ID)
	}
	domestic := h.decide(queryOf(de, "DE"))
	refusal := h.decide(queryOf(us, "DE"))
	h.recordAccess(de, "de-sample.p1", map[string]int{"Patient": 1}, domestic)
	btg := h.recordAccess(emergency, "de-sample.p1", map[string]int{"Patient": 1, "Condition": 2}, domestic)
	h.recordAccess(nl, "nl-sample.p2", map[string]int{"Patient": 1}, domestic)
	h.recordAccess(us, "de-sample.p1", nil, refusal)

	r := newRun(t, h)

	// Sign in through the identity provider (authorization code + PKCE).
	r.open("/console/login")
	r.page("login", "Sign in")
	r.do("sign in with OIDC", chromedp.Click(chromedp.CSS(`a[href="/console/login/oidc"]`)), chromedp.WaitVisible(chromedp.CSS("header .who")))
	if who := r.text("header .who"); !strings.Contains(who, "lawyer") || !strings.Contains(who, "legal") {
		t.Fatalf("signed in as %q", who)
	}
	r.page("home-legal", "Console")

	// The agreements as a table.
	r.open("/console/policy")
	r.page("policy", "Agreements and rules")
	if tbl := r.text("table.agreements"); !strings.Contains(tbl, "de-nl-2024") || !strings.Contains(tbl, "explicit consent required") {
		t.Errorf("agreements table: %s", tbl)
	}
	if rules := r.text("#rules + table"); !strings.Contains(rules, "firewall.query.purpose-forbidden") {
		t.Errorf("rules table lacks the firewall")
	}

	// A draft: end DE-NL treatment with the agreement form, and break a
	// Rego test.
	r.do("start a draft", chromedp.Click(chromedp.CSS(`form[action="/console/policy/drafts"] button`)), chromedp.WaitVisible(chromedp.CSS("#results")))
	r.page("draft", "Draft 1")
	r.do("edit de-nl-ua-2025", chromedp.Click(chromedp.Search(`//a[normalize-space()="Edit de-nl-ua-2025"]`)), chromedp.WaitVisible(chromedp.CSS("#a-parties")))
	r.page("agreement", "Agreement")
	r.do("narrow the parties", chromedp.SetValue(chromedp.CSS("#a-parties"), "DE UA"), chromedp.SetValue(chromedp.CSS("#a-kind"), "bilateral"),
		chromedp.Click(chromedp.CSS(`form.agreement button[type="submit"]`)), chromedp.WaitVisible(chromedp.CSS("#results")))
	r.do("edit de-nl-2024", chromedp.Click(chromedp.Search(`//a[normalize-space()="Edit de-nl-2024"]`)), chromedp.WaitVisible(chromedp.CSS("#a-until")))
	r.do("end it", chromedp.SetValue(chromedp.CSS("#a-until"), "2024-06-30"),
		chromedp.Click(chromedp.CSS(`form.agreement button[type="submit"]`)), chromedp.WaitVisible(chromedp.CSS("#results")))
	r.do("open firewall.rego", chromedp.Click(chromedp.Search(`//ul[@class="files"]//a[normalize-space()="mhg/authz/firewall.rego"]`)), chromedp.WaitVisible(chromedp.CSS("#text")))
	rego := get(r, "read the rego", chromedp.Value(chromedp.CSS("#text")))
	if !strings.Contains(rego, `"GOV", `) {
		t.Fatal("firewall.rego does not list GOV")
	}
	r.do("let GOV through the firewall", chromedp.SetValue(chromedp.CSS("#text"), strings.Replace(rego, `"GOV", `, "", 1)),
		chromedp.Click(chromedp.CSS(`.editor button[type="submit"]`)), chromedp.WaitVisible(chromedp.CSS("#results")))
	r.do("run the tests", chromedp.Click(chromedp.CSS(`form[action$="/test"] button`)), chromedp.WaitVisible(chromedp.CSS("#test-summary")))
	if s := r.text("#test-summary"); !strings.Contains(s, "failed") || strings.Contains(s, " 0 failed") {
		t.Fatalf("test summary: %s", s)
	}
	r.page("draft-tests", "Draft 1")
	// The agreement edits break tests that pinned DE-NL care; the firewall
	// edit breaks a firewall test.
	failure := `//tr[@class="fail"]/td[2]/a[starts-with(normalize-space(), "mhg/authz/firewall_test.rego:")]`
	where := get(r, "the failure's place", chromedp.Text(chromedp.Search(failure)))
	line := where[strings.LastIndex(where, ":")+1:]
	r.do("open the failure", chromedp.Click(chromedp.Search(failure)), chromedp.WaitVisible(chromedp.CSS("#L"+line)))
	if msg := r.text("#L" + line + " td:nth-child(3)"); !strings.Contains(msg, "FAIL") {
		t.Errorf("line %s shows %q, want the failure", line, msg)
	}
	r.page("draft-file", "mhg/authz/firewall_test.rego")

	// Impact: the three DE->NL decisions flip to deny.
	r.do("back to the draft", chromedp.Navigate(h.srv.URL+"/console/policy/drafts/1"), chromedp.WaitVisible(chromedp.CSS("#days")))
	r.do("replay", chromedp.Click(chromedp.CSS(`form[action$="/impact"] button`)), chromedp.WaitVisible(chromedp.CSS("#impact-summary")))
	if s := r.text("#impact-summary"); !strings.Contains(s, "3 allow→deny") || !strings.Contains(s, "0 deny→allow") {
		t.Errorf("impact: %s", s)
	}
	if g := r.text(".groups"); !strings.Contains(g, "agreement.cross-border.not-in-force") {
		t.Errorf("groups: %s", g)
	}
	r.page("impact", "Draft 1")

	// Explain one flip under both revisions.
	r.do("open a flip", chromedp.Click(chromedp.CSS(`#flips tbody tr:first-child a`)), chromedp.WaitVisible(chromedp.CSS("#recorded")))
	id := get(r, "decision id", chromedp.Value(chromedp.CSS("#decision-id")))
	if !slices.Contains(crossBorder, id) {
		t.Errorf("explained %s, not a DE->NL decision", id)
	}
	if a, d := r.text("#h-active + p"), r.text("#h-draft + p"); !strings.HasPrefix(a, "ALLOW") || !strings.HasPrefix(d, "DENY") {
		t.Errorf("side by side: in force %q, draft %q", a, d)
	}
	r.page("explain", "Explain a decision")

	// Sign out; the one-time link signs in as legal and auditor.
	r.do("sign out", chromedp.Click(chromedp.CSS(`form.signout button`)), chromedp.WaitVisible(chromedp.CSS(`a[href="/console/login/oidc"]`)))
	r.do("one-time link", chromedp.Navigate(h.console.OneTimeLink(time.Minute)), chromedp.WaitVisible(chromedp.CSS("header .who")))
	if who := r.text("header .who"); !strings.Contains(who, "auditor") {
		t.Fatalf("signed in with the link as %q", who)
	}

	// The timeline, filtered by requester country.
	r.open("/console/audit")
	// The unfiltered page has the same elements: mark it, and wait for a
	// page without the mark.
	get(r, "mark the page", chromedp.Evaluate[string](`document.body.dataset.before = "filter"`))
	r.do("filter NL", chromedp.SetValue(chromedp.CSS("#f-country"), "NL"), chromedp.Click(chromedp.CSS(`.filters button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("body:not([data-before]) #total")))
	if rows := r.text("table.events tbody"); !strings.Contains(rows, "nl-sample.p2") || strings.Contains(rows, "de-sample.p1") {
		t.Errorf("NL filter: %s", rows)
	}
	r.page("timeline", "Audit timeline")

	// Review the break-the-glass access.
	r.open("/console/audit/break-glass")
	r.page("break-glass", "Break-the-glass review")
	r.do("review", chromedp.SetValue(chromedp.ID("note-"+btg), "Emergency confirmed with the ward."),
		chromedp.Click(chromedp.CSS(`[id="ev-`+btg+`"] button`)), chromedp.WaitVisible(chromedp.CSS(`p.note`)))
	if rev := r.text("main table"); !strings.Contains(rev, "Emergency confirmed with the ward.") {
		t.Errorf("reviewed: %s", rev)
	}
	r.page("break-glass-reviewed", "Break-the-glass review")

	// The chain.
	r.open("/console/audit/chain")
	if s := r.text("#chain-status"); !strings.Contains(s, "The chain holds") {
		t.Errorf("chain: %s", s)
	}
	r.page("chain", "Audit chain")

	// The disclosure report, on the page and as CSV.
	downloads := t.TempDir()
	r.open("/console/audit/disclosures")
	r.do("report", chromedp.SetValue(chromedp.CSS("#d-patients"), "de-sample.p1"),
		chromedp.Click(chromedp.CSS(`button[value="html"]`)), chromedp.WaitVisible(chromedp.CSS("#disclosures")))
	r.page("disclosures", "Disclosure report")
	if _, err := chromedp.CallBrowser(r.ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
		Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: downloads}); err != nil {
		t.Fatal(err)
	}
	r.do("download", chromedp.Click(chromedp.CSS(`button[value="csv"]`)))
	var rows [][]string
	deadline := time.Now().Add(20 * time.Second)
	for len(rows) == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		files, _ := os.ReadDir(downloads)
		for _, f := range files {
			if b, err := os.ReadFile(filepath.Join(downloads, f.Name())); err == nil && len(b) > 0 && !strings.HasSuffix(f.Name(), ".crdownload") {
				rows, _ = csv.NewReader(strings.NewReader(string(b))).ReadAll()
			}
		}
	}
	if len(rows) == 0 {
		t.Fatal("no CSV downloaded")
	}
	raws, _, _ := h.audit.Search(context.Background(), audit.Query{Patient: "de-sample.p1"})
	var want []string
	for i := len(raws) - 1; i >= 0; i-- {
		ev, _ := audit.ParseEvent(raws[i])
		if ev.Role == "auditor" {
			continue // the console's own records of the auditor's work on this patient came after the report
		}
		want = append(want, ev.ID)
	}
	var got []string
	for _, row := range rows[1:] {
		if row[slices.Index(audit.DisclosureColumns, "recipient_role")] != "auditor" {
			got = append(got, row[1])
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("downloaded rows %v, want the patient's AuditEvents %v", got, want)
	}
	fmt.Fprintf(os.Stderr, "console screenshots in %s\n", r.shots)
}

// A researcher signs in, picks a measure, period and two strata, and gets
// the released table (masked cells labelled) with its chart and CSV link;
// axe-core checks the page before and after.
func TestBrowserStatistics(t *testing.T) {
	t.Parallel()
	idp, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idp.Shutdown() })
	cfg := idp.Config()
	h := newHarness(t, harnessOptions{statistics: true, oidc: OIDC{Issuer: cfg.Issuer, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
		Scopes: []string{"profile", "email", "groups"}, RoleClaim: "groups"}})
	idp.QueueUser(&mockoidc.MockUser{Subject: "researcher-1", Email: "researcher@rki.example", PreferredUsername: "researcher",
		Groups: []string{"researcher"}, EmailVerified: true})
	r := newRun(t, h)

	r.open("/console/login")
	r.do("sign in with OIDC", chromedp.Click(chromedp.CSS(`a[href="/console/login/oidc"]`)), chromedp.WaitVisible(chromedp.CSS("header .who")))
	r.page("home-researcher", "Console")
	r.do("open the statistics", chromedp.Click(chromedp.CSS(`header a[href="/console/statistics"]`)), chromedp.WaitVisible(chromedp.CSS("#s-measure")))
	r.page("statistics-form", "Statistics")
	r.do("evaluate", chromedp.SetValue(chromedp.CSS("#s-measure"), "mhp-diabetes-prevalence"),
		chromedp.SetValue(chromedp.CSS("#s-start"), "2025-02-10"), chromedp.SetValue(chromedp.CSS("#s-end"), "2025-05-03"),
		chromedp.SetValue(chromedp.CSS("#s-stratum0"), "sex"), chromedp.SetValue(chromedp.CSS("#s-stratum1"), "age-band-who"),
		chromedp.Click(chromedp.CSS(`form.filters button[type="submit"]`)), chromedp.WaitVisible(chromedp.CSS("#statistics")))
	if c := r.text("#statistics caption"); !strings.Contains(c, "2025-02-01 to 2025-05-31") || !strings.Contains(c, "masked") {
		t.Errorf("caption: %s", c)
	}
	if m := r.text("#statistics td.masked"); m != "masked" {
		t.Errorf("a masked cell reads %q", m)
	}
	if terms := r.text("dl.terms"); !strings.Contains(terms, "counts below 10 are masked") || !strings.Contains(terms, "us-pop") || !strings.Contains(terms, "de-down") {
		t.Errorf("terms: %s", terms)
	}
	if href := get(r, "the CSV link", chromedp.AttributeValue(chromedp.CSS(`a[href*="format=csv"]`), "href")).Value; !strings.Contains(href, "stratum2=age-band-who") {
		t.Errorf("CSV link %q", href)
	}
	r.page("statistics", "Statistics")
	if n := len(statisticsAudits(t, h)); n != 1 {
		t.Errorf("%d AuditEvents for one evaluation", n)
	}
}
