package console

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/migrant-health/mhg/gateway/audit"
	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/authz"
	"github.com/migrant-health/mhg/gateway/federate"
)

// harness is a console over the built-in policies, a real audit log and a
// real decision log, served by httptest.
type harness struct {
	t       testing.TB
	srv     *httptest.Server
	console *Console
	engine  *authz.Engine
	audit   *audit.Log
	decLog  string
	publish string
	// fed evaluates measures for the statistics page (harnessOptions.statistics).
	fed *federate.Service
}

type harnessOptions struct {
	oidc      OIDC
	approvals int
	key       []byte
	// statistics serves the statistics page over generated populations.
	statistics bool
}

func newHarness(t testing.TB, ho harnessOptions) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{t: t, decLog: filepath.Join(dir, "decisions.jsonl"), publish: filepath.Join(dir, "published")}
	f, err := os.OpenFile(h.decLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	h.engine, err = authz.New(authz.Options{DecisionLog: f, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.engine.Close)
	h.audit, err = audit.New(audit.Options{Path: filepath.Join(dir, "audit.jsonl")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.audit.Close() })
	h.srv = httptest.NewUnstartedServer(nil)
	base := "http://" + h.srv.Listener.Addr().String() + "/console"
	var st Statistics
	if ho.statistics {
		h.fed = statisticsFederation(t, h.engine)
		st = fedStatistics{h.fed}
	}
	h.console, err = New(Options{
		Policy: h.engine, Auditor: h.audit, AuditSearch: h.audit, Chain: h.audit,
		Decisions: authz.DecisionFile{Path: h.decLog}, BaseURL: base, OIDC: ho.oidc, OneTimeLinks: true,
		Org: "ministry-of-health", Country: "DE", TraceURL: "http://jaeger.invalid/trace/{trace_id}",
		PublishDir: h.publish, Approvals: ho.approvals, SigningKey: ho.key, SigningAlg: "HS256",
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)), Statistics: st,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.srv.Config.Handler = h.console
	h.srv.Start()
	t.Cleanup(h.srv.Close)
	return h
}

// decide takes a decision through the engine, which logs it.
func (h *harness) decide(in authz.Input) authz.Decision {
	h.t.Helper()
	d, err := h.engine.Decide(context.Background(), in)
	if err != nil {
		h.t.Fatal(err)
	}
	return d
}

// recordAccess audits one API request, as fhirapi would.
func (h *harness) recordAccess(r auth.Requester, patient string, released map[string]int, d authz.Decision) string {
	h.t.Helper()
	outcome, status := audit.OutcomeSuccess, 200
	if !d.Allow {
		outcome, status = audit.OutcomeDenied, 403
	}
	id, err := h.audit.Record(context.Background(), audit.Entry{
		Time: time.Now(), TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Requester: r, Interaction: "read", ResourceType: "Patient",
		Patient: "Patient/" + patient, Sources: []string{"de-sample"}, Released: released, Outcome: outcome, Status: status,
		BreakGlass: r.BreakGlass, Decisions: []audit.Decision{{ID: d.ID, Phase: "release", Source: "de-sample", Allow: d.Allow,
			Reasons: d.Reasons, Revision: d.Revision, Agreements: d.Agreements, Class: "C"}},
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return id
}

// browser is an HTTP client that keeps the console's cookies itself: the
// standard cookie jar would not send Secure cookies over the test's plain
// HTTP.
type browser struct {
	t       testing.TB
	h       *harness
	cookies map[string]string
	client  *http.Client
	origin  string
}

func (h *harness) browser() *browser {
	return &browser{t: h.t, h: h, cookies: map[string]string{}, origin: h.srv.URL,
		client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(method, path string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	target := path
	if !strings.HasPrefix(path, "http") {
		target = b.h.srv.URL + path
	}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if b.origin != "" {
			req.Header.Set("Origin", b.origin)
		}
	}
	if u, _ := url.Parse(target); u.Host == strings.TrimPrefix(b.h.srv.URL, "http://") {
		for k, v := range b.cookies {
			req.AddCookie(&http.Cookie{Name: k, Value: v})
		}
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c.Value
		}
	}
	return resp, string(raw)
}

func (b *browser) get(path string) (*http.Response, string) { return b.do(http.MethodGet, path, nil) }

// post posts a form with the session's CSRF token.
func (b *browser) post(path string, form url.Values) (*http.Response, string) {
	if form == nil {
		form = url.Values{}
	}
	if form.Get("csrf") == "" {
		form.Set("csrf", b.csrf())
	}
	return b.do(http.MethodPost, path, form)
}

var csrfPattern = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) csrf() string {
	b.t.Helper()
	_, body := b.get("/console/")
	m := csrfPattern.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatalf("no CSRF token on the home page")
	}
	return m[1]
}

// signInAs creates a session directly, for tests about roles.
func (b *browser) signInAs(roles ...string) {
	s := b.h.console.sessions.create(Session{Subject: "user-" + strings.Join(roles, "-"), Name: "test user", Roles: roles,
		Org: "ministry-of-health", Country: "DE", Purpose: "HCOMPL"})
	b.cookies[CookieName] = s.ID
}

// testWriter sends the console's log to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
