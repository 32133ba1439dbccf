package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/migrant-health/mhg/conformance"
	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/config"
)

// gateway is a running gateway for end-to-end tests: real sources, real
// OPA with the shipped policies, the real cache, audit log and HTTP.
type gateway struct {
	cfg  config.Config
	base string
	srv  *Server
	stop context.CancelFunc
	done chan error
}

// startGateway runs a gateway on a loopback port from the embedded default
// configuration, changed by edit, with its files in a temporary directory.
func startGateway(t testing.TB, edit func(*config.Config), opts Options) *gateway {
	t.Helper()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String() + "/fhir"
	cfg := config.Default()
	cfg.Listen = ln.Addr().String()
	cfg.PublicURL = base
	cfg.Auth.Audience = base
	cfg.Auth.DevKeyFile = filepath.Join(dir, "dev-key.pem")
	cfg.Audit.Log = filepath.Join(dir, "audit.jsonl")
	cfg.Log.Level = "warn"
	if edit != nil {
		edit(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if opts.Stdout == nil {
		opts.Stdout = io.Discard
	}
	if opts.Stderr == nil {
		opts.Stderr = io.Discard
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := New(ctx, cfg, opts)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	g := &gateway{cfg: cfg, base: base, srv: srv, stop: cancel, done: make(chan error, 1)}
	go func() { g.done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-g.done:
		case <-time.After(10 * time.Second):
			t.Error("gateway did not shut down")
		}
	})
	return g
}

// token mints a development token for a requester.
func (g *gateway) token(t testing.TB, country, role, purpose string, edit ...func(*auth.MintOptions)) string {
	t.Helper()
	m := auth.MintOptions{Org: "org-" + strings.ToLower(country), Country: country, Role: role, Purpose: purpose,
		Scopes: []string{"system/*.rs"}, TTL: 10 * time.Minute}
	for _, e := range edit {
		e(&m)
	}
	tok, err := auth.Mint(AuthOptions(g.cfg.Auth), m)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type reply struct {
	status int
	header http.Header
	body   []byte
	json   map[string]any
}

// get fetches a gateway URL (path relative to the FHIR base, or absolute)
// and checks that whatever comes back is valid R4 JSON.
func (g *gateway) get(t testing.TB, path, token string, hdr ...string) reply {
	t.Helper()
	u := path
	if !strings.HasPrefix(path, "http") {
		u = g.base + path
	}
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := reply{status: resp.StatusCode, header: resp.Header, body: b}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/fhir+json") {
		if _, err := r4.Parse(b); err != nil {
			t.Fatalf("GET %s: response is not valid R4: %v\n%s", path, err, b)
		}
		// Every resource the gateway gives out keeps its local
		// references resolvable (FHIR dom-3), entries of Bundles included.
		if v := r4.ContainedViolations(b); v != nil {
			t.Fatalf("GET %s: dom-3 violated: %q\n%s", path, v, b)
		}
	} else if strings.HasPrefix(u, g.base) {
		t.Fatalf("GET %s: FHIR response with Content-Type %q", path, resp.Header.Get("Content-Type"))
	}
	_ = json.Unmarshal(b, &r.json)
	return r
}

func (r reply) outcomeCode(t testing.TB) string {
	t.Helper()
	if r.json["resourceType"] != "OperationOutcome" {
		t.Fatalf("want an OperationOutcome, got %s", r.body)
	}
	return r.json["issue"].([]any)[0].(map[string]any)["code"].(string)
}

// entries returns the resources of a searchset by search mode.
func (r reply) entries(mode string) []map[string]any {
	var out []map[string]any
	list, _ := r.json["entry"].([]any)
	for _, e := range list {
		em := e.(map[string]any)
		if s, ok := em["search"].(map[string]any); ok && s["mode"] != mode {
			continue
		}
		out = append(out, em["resource"].(map[string]any))
	}
	return out
}

const aminaPassport = "http://hl7.org/fhir/sid/passport-UKR|FT482913"

func sourcesOf(rs []map[string]any) map[string]int {
	out := map[string]int{}
	for _, r := range rs {
		id, _ := r["id"].(string)
		src, _, _ := strings.Cut(id, ".")
		out[src]++
	}
	return out
}

func TestDemoCrossBorderSearch(t *testing.T) {
	t.Parallel()
	g := startGateway(t, nil, Options{})
	tok := g.token(t, "DE", "clinician", "TREAT")
	r := g.get(t, "/Patient?identifier="+aminaPassport, tok)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	got := sourcesOf(r.entries("match"))
	if got["de-sample"] != 1 || got["nl-sample"] != 1 || got["ua-sample"] != 1 || got["us-sample"] != 0 {
		t.Fatalf("want Amina once in each of de, nl and ua: %v", got)
	}
	// National identifiers stay at home: a Patient released across a
	// border carries only the gateway's pseudonym; the German one keeps
	// its KVNR.
	for _, p := range r.entries("match") {
		ids, _ := json.Marshal(p["identifier"])
		foreign := !strings.HasPrefix(p["id"].(string), "de-sample.")
		if !strings.Contains(string(ids), conformance.SIDGatewayPseudonym) {
			t.Fatalf("%s has no pseudonym: %s", p["id"], ids)
		}
		if foreign && (strings.Contains(string(ids), "bsn") || strings.Contains(string(ids), "FT482913")) {
			t.Fatalf("a national identifier crossed the border: %s", ids)
		}
		if !foreign && !strings.Contains(string(ids), "S482017634") {
			t.Fatalf("the domestic KVNR is missing: %s", ids)
		}
	}
	// A read of each returns the same resource.
	for _, p := range r.entries("match") {
		rr := g.get(t, "/Patient/"+p["id"].(string), tok)
		if rr.status != 200 || rr.json["id"] != p["id"] {
			t.Fatalf("read %s: %d %s", p["id"], rr.status, rr.body)
		}
	}
}

func TestNoPurposeNoData(t *testing.T) {
	t.Parallel()
	g := startGateway(t, nil, Options{})
	tok := g.token(t, "DE", "clinician", "")
	r := g.get(t, "/Patient?identifier="+aminaPassport, tok)
	if r.status != 403 || r.outcomeCode(t) != "forbidden" {
		t.Fatalf("no purpose: %d %s", r.status, r.body)
	}
}

func TestTokens(t *testing.T) {
	t.Parallel()
	g := startGateway(t, nil, Options{})
	good := g.token(t, "DE", "clinician", "TREAT")
	expired := g.token(t, "DE", "clinician", "TREAT", func(m *auth.MintOptions) {
		m.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	})
	otherAud := func() string {
		c := AuthOptions(g.cfg.Auth)
		c.Audience = "https://another-gateway.example/fhir"
		tok, err := auth.Mint(c, auth.MintOptions{Country: "DE", Role: "clinician", Purpose: "TREAT", Scopes: []string{"system/*.rs"}})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}()
	parts := strings.Split(good, ".")
	forged := parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	_ = json.Unmarshal(payload, &claims)
	claims["role"] = "admin"
	changed, _ := json.Marshal(claims)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(changed) + "." + parts[2]
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
	for name, tok := range map[string]string{
		"none": "", "expired": expired, "other audience": otherAud, "forged signature": forged,
		"tampered claims": tampered, "alg none": none, "garbage": "not-a-jwt",
	} {
		t.Run(name, func(t *testing.T) {
			r := g.get(t, "/Patient?identifier="+aminaPassport, tok)
			if r.status != 401 || r.outcomeCode(t) != "login" {
				t.Fatalf("%d %s", r.status, r.body)
			}
			if r.header.Get("WWW-Authenticate") == "" {
				t.Fatal("no WWW-Authenticate challenge")
			}
		})
	}
	if r := g.get(t, "/Patient?identifier="+aminaPassport, good); r.status != 200 {
		t.Fatalf("the good token was refused: %d %s", r.status, r.body)
	}
}

// nationalSources configures three national FHIR servers: DE and NL (with
// agreements between them) and US (with none).
func nationalSources(t testing.TB) (de, nl, us *nationalServer, edit func(*config.Config)) {
	de, nl, us = newNationalServer(t, "de-sample"), newNationalServer(t, "nl-sample"), newNationalServer(t, "us-sample")
	edit = func(c *config.Config) {
		c.Sources = []config.Source{
			{ID: "de-kbv", Country: "DE", Profile: "de-basis", Kind: config.KindFHIR, BaseURL: de.URL, Timeout: sourceTimeout},
			{ID: "nl-lsp", Country: "NL", Profile: "nl-core", Kind: config.KindFHIR, BaseURL: nl.URL, Timeout: sourceTimeout},
			{ID: "us-ehr", Country: "US", Profile: "us-core", Kind: config.KindFHIR, BaseURL: us.URL, Timeout: sourceTimeout},
		}
		c.Federation.SourceTimeout = sourceTimeout
		c.Cache.Disabled = true
	}
	return
}

func TestNationalFHIRSources(t *testing.T) {
	t.Parallel()
	de, nl, us, edit := nationalSources(t)
	g := startGateway(t, edit, Options{})
	tok := g.token(t, "DE", "clinician", "TREAT")
	search := "/Patient?identifier=" + aminaPassport

	r := g.get(t, search, tok)
	if got := sourcesOf(r.entries("match")); r.status != 200 || got["de-kbv"] != 1 || got["nl-lsp"] != 1 || len(got) != 2 {
		t.Fatalf("%d %v %s", r.status, got, r.body)
	}
	if us.requests.Load() != 0 {
		t.Fatalf("the US source has no agreement with DE but was contacted %d times", us.requests.Load())
	}

	// Clinical data of a patient, paged by the national server (2 per page).
	var dePatient string
	for _, p := range r.entries("match") {
		if strings.HasPrefix(p["id"].(string), "de-kbv.") {
			dePatient = p["id"].(string)
		}
	}
	cond := g.get(t, "/Condition?patient="+dePatient, tok)
	if cond.status != 200 || len(cond.entries("match")) == 0 {
		t.Fatalf("conditions: %d %s", cond.status, cond.body)
	}

	tests := []struct {
		name     string
		deMode   string
		nlMode   string
		status   int
		warnings []string
	}{
		{"nl answers 500", "", "500", 200, []string{"source nl-lsp could not contribute"}},
		{"nl sends malformed JSON", "", "garbage", 200, []string{"source nl-lsp could not contribute (invalid-response)"}},
		{"nl sends invalid FHIR", "", "invalid", 200, []string{"source nl-lsp could not contribute (invalid-response)"}},
		{"nl too slow", "", "slow", 200, []string{"source nl-lsp could not contribute (timeout)"}},
		{"both fail", "500", "garbage", 502, nil},
		{"both too slow", "slow", "slow", 504, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			de.mode.Store(tt.deMode)
			nl.mode.Store(tt.nlMode)
			t.Cleanup(func() { de.mode.Store(""); nl.mode.Store("") })
			r := g.get(t, search, tok)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			for _, w := range tt.warnings {
				if !strings.Contains(string(r.body), w) {
					t.Fatalf("missing warning %q: %s", w, r.body)
				}
			}
			if tt.status == 200 {
				checkFullURLs(t, g, r)
			}
			if tt.status == 200 && sourcesOf(r.entries("match"))["de-kbv"] != 1 {
				t.Fatalf("the healthy source's answer is missing: %s", r.body)
			}
			if tt.status != 200 {
				code := r.outcomeCode(t)
				if (tt.status == 502 && code != "transient") || (tt.status == 504 && code != "timeout") {
					t.Fatalf("code %s for %d", code, tt.status)
				}
			}
			if strings.Contains(string(r.body), "FT482913") && tt.status != 200 {
				t.Fatal("an error quotes the identifier")
			}
		})
	}
	if us.requests.Load() != 0 {
		t.Fatal("the US source was contacted")
	}
}

// nodePackage finds node and the conformance/<folder> directory with the
// npm package pkg that `make <target>` installs there. Without either the
// test is skipped, so that `go test ./...` passes on a fresh clone; `make
// test` sets MHG_REQUIRE_CLIENTS=1 (after installing them, and .ci/run
// installs node), which makes their absence a failure.
func nodePackage(t *testing.T, folder, pkg, target string) (node, dir string) {
	t.Helper()
	missing := t.Skip
	if os.Getenv("MHG_REQUIRE_CLIENTS") != "" {
		missing = t.Fatal
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is not installed: this test needs Node.js and `make " + target + "`")
	}
	_, file, _, _ := runtime.Caller(0)
	dir = filepath.Join(filepath.Dir(file), "..", "..", "conformance", folder)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", filepath.FromSlash(pkg))); err != nil {
		missing(pkg + " is not installed: run `make " + target + "` (make test does)")
	}
	return node, dir
}

// runClient runs one of the Node.js scripts in conformance/clients (a
// third-party FHIR client, pinned) with env, and returns what it printed.
func runClient(t *testing.T, script string, env ...string) []byte {
	t.Helper()
	node, clients := nodePackage(t, "clients", "fhir-kit-client", "clients")
	cmd := exec.Command(node, filepath.Join(clients, script))
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("client %s failed: %v\n%s", script, err, out)
	}
	return out
}

func TestFHIRKitClient(t *testing.T) {
	t.Parallel()
	g := startGateway(t, nil, Options{})
	tok := g.token(t, "DE", "clinician", "TREAT")
	out := runClient(t, "fhirkit.mjs", "MHG_BASE="+g.base, "MHG_TOKEN="+tok, "MHG_SEARCH_TYPE=Patient",
		"MHG_SEARCH=identifier="+aminaPassport, "MHG_PAGE_SIZE=2")
	var got struct {
		Metadata struct {
			ResourceType, FHIRVersion string
			Types                     []string
		}
		Search struct {
			Total int
			Pages []int
			IDs   []string
		}
		Read            struct{ ResourceType, ID string }
		Unauthenticated struct {
			Status       int
			ResourceType string
			Code         string
		}
		Error any
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("client output: %v\n%s", err, out)
	}
	if got.Error != nil {
		t.Fatalf("client error: %v", got.Error)
	}
	if got.Metadata.ResourceType != "CapabilityStatement" || got.Metadata.FHIRVersion != "4.0.1" {
		t.Fatalf("metadata %+v", got.Metadata)
	}
	if got.Search.Total != 3 || len(got.Search.Pages) != 2 || got.Search.Pages[0] != 2 || got.Search.Pages[1] != 1 || len(got.Search.IDs) != 3 {
		t.Fatalf("paging %+v", got.Search)
	}
	if got.Read.ResourceType != "Patient" || got.Read.ID != got.Search.IDs[0] {
		t.Fatalf("read %+v", got.Read)
	}
	if got.Unauthenticated.Status != 401 || got.Unauthenticated.ResourceType != "OperationOutcome" {
		t.Fatalf("unauthenticated %+v", got.Unauthenticated)
	}
}

func TestGracefulShutdown(t *testing.T) {
	slow := newNationalServer(t, "de-sample")
	slow.slowFor = time.Second // a search and a consent lookup: 2s in all
	slow.mode.Store("slow")
	g := startGateway(t, func(c *config.Config) {
		c.Sources = []config.Source{{ID: "de-slow", Country: "DE", Profile: "de-basis", Kind: config.KindFHIR, BaseURL: slow.URL, Timeout: 5 * time.Second}}
		c.Federation.SourceTimeout = 5 * time.Second
	}, Options{})
	tok := g.token(t, "DE", "clinician", "TREAT")
	started := make(chan struct{})
	result := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("GET", g.base+"/Patient?identifier="+aminaPassport, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		close(started)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			result <- -1
			return
		}
		resp.Body.Close()
		result <- resp.StatusCode
	}()
	<-started
	time.Sleep(300 * time.Millisecond)
	g.stop()
	select {
	case code := <-result:
		if code != 200 {
			t.Fatalf("the request in flight got %d, want 200 (finished, not cut)", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the request in flight never finished")
	}
	if err := <-g.done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	g.done <- nil
}

// TestMalformedSearchValuesNeverReachSources: a search value the gateway
// cannot read is the client's mistake: 400 before any source is asked, so
// it is neither a source failure (502) nor counted against a breaker.
func TestMalformedSearchValuesNeverReachSources(t *testing.T) {
	t.Parallel()
	de, nl, us, edit := nationalSources(t)
	g := startGateway(t, func(c *config.Config) {
		edit(c)
		for i := range c.Sources {
			c.Sources[i].Breaker.Failures = 2
		}
	}, Options{})
	tok := g.token(t, "DE", "clinician", "TREAT")
	requests := func() int64 { return de.requests.Load() + nl.requests.Load() + us.requests.Load() }
	for _, mode := range []string{"", "500"} {
		// A national server that answers 500 to what it cannot read must
		// not see these either.
		de.mode.Store(mode)
		nl.mode.Store(mode)
		for _, q := range []string{
			"/Patient?identifier=a|b|c",
			"/Patient?identifier=http://x|a|b",
			"/Patient?identifier=http://hl7.org/fhir/sid/passport-UKR|",
			"/Patient?identifier=|",
			"/Patient?identifier=abc%5C",
			"/Patient?identifier=a%00b",
			"/Patient/$summary?identifier=a|b|c",
		} {
			before := requests()
			r := g.get(t, q, tok)
			if r.status != 400 || r.json["resourceType"] != "OperationOutcome" {
				t.Fatalf("%s: %d %s", q, r.status, r.body)
			}
			if n := requests() - before; n != 0 {
				t.Fatalf("%s reached the sources (%d requests)", q, n)
			}
		}
	}
	de.mode.Store("")
	nl.mode.Store("")
	r := g.get(t, "/Patient?identifier="+aminaPassport, tok)
	if got := sourcesOf(r.entries("match")); r.status != 200 || got["de-kbv"] != 1 || got["nl-lsp"] != 1 {
		t.Fatalf("a good search after the bad ones: %d %v (a breaker opened?)", r.status, got)
	}
}
