package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/migrant-health/mhg/gateway/audit"
	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/authz"
	"github.com/migrant-health/mhg/gateway/telemetry"
)

//go:embed templates static
var files embed.FS

// PolicyEngine is what the console needs of the running policy: the same
// decisions the FHIR routes get, and explanations of recorded ones.
type PolicyEngine interface {
	Decide(ctx context.Context, in authz.Input) (authz.Decision, error)
	ExplainAt(ctx context.Context, in authz.Input, at time.Time) (authz.Explanation, error)
	Revision() string
}

// Auditor records an AuditEvent for every console action that reads
// patient-related data or changes anything.
type Auditor interface {
	Record(ctx context.Context, e audit.Entry) (string, error)
}

// ChainVerifier verifies the hash chain of the audit log.
type ChainVerifier interface {
	VerifyChain(ctx context.Context) (audit.Report, error)
	Head() (seq uint64, hash string)
}

// DecisionLog holds the recorded policy decisions (their inputs carry no
// patient data): the JSONL decision log (authz.DecisionFile) today, a
// database repository tomorrow.
type DecisionLog interface {
	// Range calls fn for each decision with from <= time < to (zero bounds
	// are open), oldest first, and stops at fn's first error.
	Range(ctx context.Context, from, to time.Time, fn func(authz.LogEntry) error) error
	// Find returns one decision by id, an error wrapping
	// authz.ErrDecisionNotFound when there is none.
	Find(ctx context.Context, id string) (authz.LogEntry, error)
}

var (
	_ DecisionLog   = authz.DecisionFile{}
	_ ChainVerifier = (*audit.Log)(nil)
	_ PolicyEngine  = (*authz.Engine)(nil)
)

// OIDC configures sign-in with the organisation's identity provider
// (authorization code flow with PKCE).
type OIDC struct {
	// Issuer is the provider's issuer URL (discovery at
	// /.well-known/openid-configuration). Empty disables OIDC sign-in.
	Issuer string
	// ClientID and ClientSecret identify the console at the provider; an
	// empty secret is a public client (PKCE alone).
	ClientID, ClientSecret string
	// Scopes are asked for besides openid. Nil means profile and email.
	Scopes []string
	// RoleClaim names the ID token claim holding the console roles (a
	// string or a list; a dotted path reaches into objects, as
	// realm_access.roles). Empty means "roles".
	RoleClaim string
	// OrgClaim and CountryClaim name the claims with the person's
	// organisation and ISO 3166-1 alpha-2 country; empty means "org" and
	// "country". Where the token has none, Options.Org and Options.Country
	// apply.
	OrgClaim, CountryClaim string
	// HTTPClient talks to the provider. Nil means a client with a 10s
	// timeout.
	HTTPClient *http.Client
}

// Options configure the console. Policy and Auditor are required; every
// other zero value is documented on its field.
type Options struct {
	// Policy decides every console action, as it decides FHIR requests.
	Policy PolicyEngine
	// PolicyFiles are the policies drafts start from (the policy
	// directory in OPA bundle layout). Nil means the policies built into
	// the binary.
	PolicyFiles fs.FS
	// Auditor records console actions. Required.
	Auditor Auditor
	// AuditSearch serves the audit desk. Nil leaves the desk without
	// records (its pages say so).
	AuditSearch audit.Searcher
	// Chain reports the audit log's chain status. Nil: not available.
	Chain ChainVerifier
	// Decisions are the recorded policy decisions for impact analysis and
	// explanations. Nil: those pages say no decision log is configured.
	Decisions DecisionLog
	// BaseURL is the console's public URL, e.g.
	// https://gateway.example.org/console. Required for OIDC (the
	// redirect URL is BaseURL + "/auth/callback").
	BaseURL string
	// OIDC configures sign-in with an identity provider.
	OIDC OIDC
	// OneTimeLinks allows sign-in with links minted by OneTimeLink (the
	// development default prints one at start-up, as notebook servers
	// do). False refuses such links.
	OneTimeLinks bool
	// LinkRoles are the roles a one-time link signs in with. Nil means
	// legal and auditor.
	LinkRoles []string
	// Org and Country describe people whose token names neither, in
	// policy decisions and audit records. Empty leaves them empty.
	Org, Country string
	// Purpose is the purpose of use of console work. Empty means HCOMPL
	// (health compliance).
	Purpose string
	// IdleTimeout ends a session unused that long; zero means 30 minutes.
	// MaxAge ends any session; zero means 12 hours.
	IdleTimeout, MaxAge time.Duration
	// TraceURL links an AuditEvent to its trace: "{trace_id}" is replaced
	// by the trace id (Jaeger: http://jaeger:16686/trace/{trace_id}).
	// Empty shows the trace id without a link.
	TraceURL string
	// PublishDir receives published drafts: a patch against the policies
	// and, with SigningKey, a signed OPA bundle for the bundle server.
	// Empty means .mhg/published.
	PublishDir string
	// SigningKey (PEM private key, or an HMAC secret) and SigningAlg
	// (RS256, ES256, HS256, ...) sign published bundles. Empty key: no
	// bundle is written, only the patch.
	SigningKey []byte
	SigningAlg string
	// Approvals is how many different legal users must approve a draft
	// before it is published: 0 or 1 means its author alone, 2 a second
	// approver.
	Approvals int
	// Statistics serves the statistics page (measures evaluated as
	// Measure/{id}/$evaluate-measure evaluates them). Nil: no such page.
	Statistics Statistics
	// StatisticsPurpose is the purpose of use statistics are asked for
	// under; empty means PUBHLTH (public health).
	StatisticsPurpose string
	// StatisticsWriteTimeout is how long the statistics page may take to
	// evaluate and send, when that is longer than the server's write
	// timeout (an evaluation runs up to the statistics deadline). Zero
	// leaves the server's write timeout.
	StatisticsWriteTimeout time.Duration
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Logger receives log-safe lines (never patient data). Nil discards.
	Logger *slog.Logger
}

// Console serves the pages under /console/.
type Console struct {
	opts     Options
	log      *slog.Logger
	mux      *http.ServeMux
	pages    map[string]*template.Template
	sessions *sessions
	links    links
	oidc     *oidcClient
	drafts   drafts
	// pending are sign-ins under way, by login cookie value.
	pending sync.Map
}

var _ http.Handler = (*Console)(nil)

// Prefix is where the console is served.
const Prefix = "/console"

// New builds the console.
func New(opts Options) (*Console, error) {
	if opts.Policy == nil || opts.Auditor == nil {
		return nil, errors.New("console: Policy and Auditor are required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 30 * time.Minute
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = 12 * time.Hour
	}
	if opts.Purpose == "" {
		opts.Purpose = "HCOMPL"
	}
	if opts.StatisticsPurpose == "" {
		opts.StatisticsPurpose = "PUBHLTH"
	}
	if opts.LinkRoles == nil {
		opts.LinkRoles = []string{"legal", "auditor"}
	}
	if opts.PublishDir == "" {
		opts.PublishDir = ".mhg/published"
	}
	if opts.PolicyFiles == nil {
		fsys, err := authz.PolicyFS("")
		if err != nil {
			return nil, fmt.Errorf("console: %w", err)
		}
		opts.PolicyFiles = fsys
	}
	opts.BaseURL = strings.TrimRight(opts.BaseURL, "/")
	c := &Console{opts: opts, log: opts.Logger, sessions: newSessions(opts.IdleTimeout, opts.MaxAge, opts.Now)}
	c.links.now = opts.Now
	c.drafts.byID = map[string]*draft{}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if opts.OIDC.Issuer != "" {
		if opts.BaseURL == "" {
			return nil, errors.New("console: OIDC sign-in needs BaseURL for its redirect URL")
		}
		c.oidc = newOIDCClient(opts.OIDC, opts.BaseURL+"/auth/callback")
	}
	var err error
	if c.pages, err = parsePages(); err != nil {
		return nil, err
	}
	c.routes()
	return c, nil
}

// OneTimeLink mints a sign-in link valid once, for ttl; "" when one-time
// links are off.
func (c *Console) OneTimeLink(ttl time.Duration) string {
	if !c.opts.OneTimeLinks {
		return ""
	}
	return c.opts.BaseURL + "/login/link?token=" + url.QueryEscape(c.links.mint(ttl))
}

func (c *Console) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(files, "static")
	m.Handle("GET /console/static/", http.StripPrefix("/console/static/", http.FileServerFS(static)))
	m.HandleFunc("GET /console/login", c.loginPage)
	m.HandleFunc("GET /console/login/oidc", c.oidcStart)
	m.HandleFunc("GET /console/auth/callback", c.oidcCallback)
	m.HandleFunc("GET /console/login/link", c.linkLogin)
	m.HandleFunc("POST /console/logout", c.signedIn(c.logout))
	m.HandleFunc("GET /console/{$}", c.signedIn(c.home))

	m.HandleFunc("GET /console/policy", c.signedIn(c.policyPage))
	m.HandleFunc("POST /console/policy/drafts", c.signedIn(c.newDraft))
	m.HandleFunc("GET /console/policy/drafts/{id}", c.signedIn(c.draftPage))
	m.HandleFunc("GET /console/policy/drafts/{id}/agreement", c.signedIn(c.agreementForm))
	m.HandleFunc("POST /console/policy/drafts/{id}/agreement", c.signedIn(c.saveAgreement))
	m.HandleFunc("GET /console/policy/drafts/{id}/file", c.signedIn(c.fileEditor))
	m.HandleFunc("POST /console/policy/drafts/{id}/file", c.signedIn(c.saveFile))
	m.HandleFunc("POST /console/policy/drafts/{id}/test", c.signedIn(c.testDraft))
	m.HandleFunc("POST /console/policy/drafts/{id}/impact", c.signedIn(c.impactPage))
	m.HandleFunc("POST /console/policy/drafts/{id}/publish", c.signedIn(c.publishDraft))
	m.HandleFunc("GET /console/policy/explain", c.signedIn(c.explainPage))

	m.HandleFunc("GET /console/audit", c.signedIn(c.timeline))
	m.HandleFunc("POST /console/audit", c.signedIn(c.timeline))
	m.HandleFunc("GET /console/audit/decision", c.signedIn(c.auditDecision))
	m.HandleFunc("GET /console/audit/break-glass", c.signedIn(c.breakGlassQueue))
	m.HandleFunc("POST /console/audit/break-glass/review", c.signedIn(c.reviewBreakGlass))
	m.HandleFunc("GET /console/audit/chain", c.signedIn(c.chainStatus))
	m.HandleFunc("GET /console/audit/disclosures", c.signedIn(c.disclosures))
	m.HandleFunc("POST /console/audit/disclosures", c.signedIn(c.disclosures))
	m.HandleFunc("GET /console/statistics", c.signedIn(c.statisticsPage))
	c.mux = m
	for _, p := range []string{"/console/", "/console/login", "/console/policy", "/console/policy/drafts/{id}", "/console/audit",
		"/console/audit/decision", "/console/audit/break-glass", "/console/audit/chain", "/console/audit/disclosures", "/console/statistics"} {
		telemetry.AllowRoutes("GET "+p, "POST "+p)
	}
}

// ServeHTTP serves the console with its security headers: a
// Content-Security-Policy that allows no inline script or style and no
// other origin, no framing, no caching of pages that hold audit data.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "+
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	// same-origin, not no-referrer: with no-referrer browsers send
	// "Origin: null" on form posts, and the origin check needs the origin.
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	if !strings.HasPrefix(r.URL.Path, "/console/static/") {
		h.Set("Cache-Control", "no-store")
	}
	if r.URL.Path == Prefix {
		http.Redirect(w, r, Prefix+"/", http.StatusMovedPermanently)
		return
	}
	c.mux.ServeHTTP(w, r)
}

// handler is a console page with its session.
type handler func(w http.ResponseWriter, r *http.Request, s *Session)

// signedIn loads the session (or sends the browser to sign in) and, for
// every POST, checks the CSRF token and the Origin.
func (c *Console) signedIn(next handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie(CookieName)
		var s *Session
		if err == nil {
			s, _ = c.sessions.get(ck.Value)
		}
		if s == nil {
			if r.Method != http.MethodGet {
				c.errorPage(w, r, nil, http.StatusUnauthorized, "Your session has ended. Sign in again.")
				return
			}
			http.Redirect(w, r, Prefix+"/login", http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			if !c.sameOrigin(r) || !sameToken(r.PostFormValue("csrf"), s.CSRF) {
				c.errorPage(w, r, s, http.StatusForbidden, "This form could not be accepted (its security token is missing or stale). Go back, reload the page and try again.")
				return
			}
		}
		next(w, r, s)
	}
}

// sameOrigin refuses a POST whose Origin names another site. Browsers send
// Origin on every POST; its absence is left to the CSRF token.
func (c *Console) sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// allowed asks the policy whether the session may do what in says, trying
// each of its roles; it returns the decision taken (the allowing one, or
// the last refusal) and the requester it was taken for.
func (c *Console) allowed(ctx context.Context, s *Session, action authz.Action) (authz.Decision, auth.Requester) {
	var d authz.Decision
	var req auth.Requester
	roles := s.Roles
	if len(roles) == 0 {
		roles = []string{""}
	}
	for _, role := range roles {
		req = s.Requester(role)
		var err error
		d, err = c.opts.Policy.Decide(ctx, authz.Input{Phase: authz.PhaseQuery, Requester: req, Action: action, Consent: []authz.Provision{}})
		if err != nil {
			c.log.ErrorContext(ctx, "console: policy decision failed", "error", err)
			d.Allow = false
		}
		if d.Allow {
			break
		}
	}
	return d, req
}

// Actions the console asks the policy about.
var (
	actWorkbench = authz.Action{Interaction: "operation", Operation: "policy-workbench"}
	actPublish   = authz.Action{Interaction: "operation", Operation: "policy-publish"}
	actAudit     = authz.Action{Interaction: "search-type", ResourceType: "AuditEvent"}
	actReview    = authz.Action{Interaction: "operation", ResourceType: "AuditEvent", Operation: "review-break-glass"}
	actDisclose  = authz.Action{Interaction: "operation", ResourceType: "Patient", Operation: "disclosures"}
)

// authorize decides an action and answers 403 when the policy refuses;
// refusals of actions that would read patient-related data or change
// anything are audited like refused API calls.
func (c *Console) authorize(w http.ResponseWriter, r *http.Request, s *Session, action authz.Action, audited bool) (authz.Decision, auth.Requester, bool) {
	d, req := c.allowed(r.Context(), s, action)
	if d.Allow {
		return d, req, true
	}
	if audited {
		_, _ = c.record(r.Context(), req, action, d, http.StatusForbidden, nil)
	}
	c.errorPage(w, r, s, http.StatusForbidden, "The policy does not let you do this ("+strings.Join(d.Reasons, ", ")+").")
	return d, req, false
}

// record writes the AuditEvent of a console action; edit fills in what the
// action concerned (patient, review).
func (c *Console) record(ctx context.Context, req auth.Requester, action authz.Action, d authz.Decision, status int, edit func(*audit.Entry)) (string, error) {
	e := audit.Entry{
		Time: c.opts.Now().UTC(), Requester: req, Interaction: action.Interaction, ResourceType: action.ResourceType,
		Operation: action.Operation, Status: status, Released: map[string]int{},
		Decisions: []audit.Decision{{ID: d.ID, Phase: authz.PhaseQuery, Allow: d.Allow, Reasons: d.Reasons, Revision: d.Revision}},
	}
	switch {
	case status >= 200 && status < 300:
		e.Outcome = audit.OutcomeSuccess
	case status == http.StatusForbidden:
		e.Outcome = audit.OutcomeDenied
	default:
		e.Outcome = audit.OutcomeFailed
	}
	if edit != nil {
		edit(&e)
	}
	id, err := c.opts.Auditor.Record(ctx, e)
	if err != nil {
		c.log.ErrorContext(ctx, "console: audit record not written", "error.type", telemetry.ErrorType(err))
	}
	return id, err
}

// page is what every template gets.
type page struct {
	Title   string
	Session *Session
	Nav     nav
	Data    any
	Flash   string
	Error   string
	Status  int
}

// nav says which desks the session may open, as the policy decides.
type nav struct {
	Workbench, Audit, Statistics bool
}

func (c *Console) navFor(ctx context.Context, s *Session) nav {
	if s == nil {
		return nav{}
	}
	w, _ := c.allowed(ctx, s, actWorkbench)
	a, _ := c.allowed(ctx, s, actAudit)
	n := nav{Workbench: w.Allow, Audit: a.Allow}
	if c.opts.Statistics != nil {
		st, _ := c.statisticsAllowed(ctx, s)
		n.Statistics = st.Allow
	}
	return n
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, s *Session, status int, name, title string, data any) {
	t, ok := c.pages[name]
	if !ok {
		panic("console: no template " + name)
	}
	p := page{Title: title, Session: s, Nav: c.navFor(r.Context(), s), Data: data, Status: status}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := t.ExecuteTemplate(w, "layout", p); err != nil {
		c.log.ErrorContext(r.Context(), "console: render", "page", name, "error", err)
	}
}

func (c *Console) errorPage(w http.ResponseWriter, r *http.Request, s *Session, status int, msg string) {
	c.render(w, r, s, status, "error", http.StatusText(status), msg)
}

// parsePages parses each page template with the layout.
func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"join": strings.Join,
		"time": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format("2006-01-02 15:04:05 UTC")
		},
		"date": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format(time.DateOnly)
		},
		"has": func(list []string, s string) bool {
			for _, x := range list {
				if x == s {
					return true
				}
			}
			return false
		},
		"groups": func(caption string, g []Group) any {
			return struct {
				Caption string
				Groups  []Group
			}{caption, g}
		},
		"pageOf": func(f filter, offset int, label, csrf string) any {
			return struct {
				F      filter
				Offset int
				Label  string
				CSRF   string
			}{f, offset, label, csrf}
		},
		"pct": func(a, b int) string {
			if b == 0 {
				return "0"
			}
			return fmt.Sprintf("%.0f", 100*float64(a)/float64(b))
		},
	}
	names, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" || base == "partials" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/partials.html", n)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", base, err)
		}
		out[base] = t
	}
	return out, nil
}

func (c *Console) home(w http.ResponseWriter, r *http.Request, s *Session) {
	n := c.navFor(r.Context(), s)
	if !n.Workbench && !n.Audit && !n.Statistics {
		c.errorPage(w, r, s, http.StatusForbidden, "The console is for the legal team, auditors and, where statistics are enabled, public health; the policy gives your role no desk here.")
		return
	}
	c.render(w, r, s, http.StatusOK, "home", "Console", nil)
}
