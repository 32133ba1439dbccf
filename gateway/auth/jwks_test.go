package auth

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

func reasonOf(err error) Reason {
	var te *TokenError
	if errors.As(err, &te) {
		return te.Reason
	}
	return ""
}

func TestJWKSFile(t *testing.T) {
	ec, rs := testKeys(t)
	small := mustRSA(1024)
	tests := []struct {
		name    string
		entries []jwkEntry
		raw     []byte // used instead of entries when set
		wantErr string // "" means NewVerifier succeeds
		accept  []signingKey
		refuse  map[string]Reason // kid -> reason for a token signed by ec under that kid
	}{
		{
			name:    "EC and RSA keys",
			entries: []jwkEntry{published(ec), published(rs)},
			accept:  []signingKey{ec, rs},
		},
		{
			name:    "encryption key skipped",
			entries: []jwkEntry{published(rs), {kid: "enc-1", key: ec.public(), use: jwkset.UseEnc}},
			accept:  []signingKey{rs},
			refuse:  map[string]Reason{"enc-1": ReasonUnknownKey},
		},
		{
			name:    "ES384-only key skipped",
			entries: []jwkEntry{published(rs), {kid: "es384", key: ec.public(), alg: jwkset.AlgES384}},
			accept:  []signingKey{rs},
			refuse:  map[string]Reason{"es384": ReasonUnknownKey},
		},
		{
			name:    "key with alg RS256 refuses ES256 tokens",
			entries: []jwkEntry{published(rs), {kid: "odd", key: ec.public(), alg: jwkset.AlgRS256}},
			accept:  []signingKey{rs},
			refuse:  map[string]Reason{"odd": ReasonKeyMismatch},
		},
		{
			name:    "private parts are dropped",
			entries: []jwkEntry{{kid: ec.kid, key: ec.signer}},
			accept:  []signingKey{ec},
		},
		{name: "short RSA key only", entries: []jwkEntry{{kid: "small", key: &small.PublicKey}}, wantErr: "no RS256 or ES256 signing key"},
		{name: "no keys", entries: nil, wantErr: "no RS256 or ES256 signing key"},
		{name: "key without kid", entries: []jwkEntry{{key: ec.public()}}, wantErr: "has no kid"},
		{name: "duplicate kid", entries: []jwkEntry{published(ec), {kid: ec.kid, key: rs.public()}}, wantErr: "appears twice"},
		{name: "not JSON", raw: []byte("{keys:"), wantErr: "jwks file"},
		{name: "EC point off the curve", raw: []byte(`{"keys":[{"kty":"EC","crv":"P-256","kid":"bad","x":"AQ","y":"AQ"}]}`), wantErr: "key 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := tc.raw
			if raw == nil {
				raw = jwksJSON(t, tc.entries...)
			}
			cfg := VerifierOptions{Issuer: testIssuer, Audience: testAudience, JWKSFile: writeFile(t, "jwks.json", raw)}
			v, err := NewVerifier(withKeys(VerifierOptions{Now: func() time.Time { return testNow }}, cfg))
			if tc.wantErr != "" {
				if err == nil {
					v.Close()
					t.Fatalf("NewVerifier accepted the key set")
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %q does not mention %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(v.Close)
			if err := v.Check(context.Background()); err != nil {
				t.Errorf("Check: %v", err)
			}
			for _, k := range tc.accept {
				alg := jwt.SigningMethod(jwt.SigningMethodES256)
				if k.kid == rs.kid {
					alg = jwt.SigningMethodRS256
				}
				if _, err := v.Verify(context.Background(), sign(t, alg, k, goodClaims(), nil)); err != nil {
					t.Errorf("kid %s: %v", k.kid, err)
				}
			}
			for kid, want := range tc.refuse {
				_, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodES256, signingKey{kid, ec.signer}, goodClaims(), nil))
				if got := reasonOf(err); got != want {
					t.Errorf("kid %s: %v, want %q", kid, err, want)
				}
			}
		})
	}
}

// jwksServer serves a key set that tests can replace, counting fetches.
type jwksServer struct {
	*httptest.Server
	mu   sync.Mutex
	body []byte
	code int
	hits atomic.Int64
}

func newJWKSServer(t *testing.T, body []byte) *jwksServer {
	t.Helper()
	s := &jwksServer{body: body, code: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		body, code := s.body, s.code
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(code int, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.code, s.body = code, body
}

func urlConfig(url string) VerifierOptions {
	return VerifierOptions{Issuer: testIssuer, Audience: testAudience, JWKSURL: url, ClockSkew: 30 * time.Second}
}

func TestJWKSURLRotation(t *testing.T) {
	ec, rs := testKeys(t)
	next := signingKey{"ec-2", mustEC()}
	srv := newJWKSServer(t, jwksJSON(t, published(ec)))
	v := newVerifier(t, urlConfig(srv.URL+"/jwks"), VerifierOptions{
		RefreshInterval:           time.Hour, // only unknown kids refresh in this test
		UnknownKeyRefreshInterval: time.Hour,
	})
	ctx := context.Background()
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodES256, ec, goodClaims(), nil)); err != nil {
		t.Fatalf("published key: %v", err)
	}
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("fetches after start = %d, want 1", n)
	}

	// The issuer rotates: the new kid is accepted once the set is fetched
	// again, which the first token naming it causes.
	srv.serve(http.StatusOK, jwksJSON(t, published(ec), published(next), published(rs)))
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodES256, next, goodClaims(), nil)); err != nil {
		t.Fatalf("rotated-in key: %v", err)
	}
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodRS256, rs, goodClaims(), nil)); err != nil {
		t.Fatalf("RS256 key from the same fetch: %v", err)
	}
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("fetches after rotation = %d, want 2", n)
	}

	// Made-up kids cannot make the gateway fetch again within the
	// interval, and they fail fast rather than queueing.
	start := time.Now()
	for range 20 {
		_, err := v.Verify(ctx, sign(t, jwt.SigningMethodES256, rogueEC, goodClaims(), nil))
		if got := reasonOf(err); got != ReasonUnknownKey {
			t.Fatalf("made-up kid: %v, want %q", err, ReasonUnknownKey)
		}
	}
	if n := srv.hits.Load(); n != 2 {
		t.Errorf("fetches after 20 unknown kids = %d, want still 2", n)
	}
	if d := time.Since(start); d > jwksFetchBudget {
		t.Errorf("20 unknown kids took %s", d)
	}
}

func TestJWKSURLUnknownKidRefreshIsRateLimited(t *testing.T) {
	ec, _ := testKeys(t)
	srv := newJWKSServer(t, jwksJSON(t, published(ec)))
	v := newVerifier(t, urlConfig(srv.URL), VerifierOptions{
		RefreshInterval:           time.Hour,
		UnknownKeyRefreshInterval: time.Hour,
	})
	ctx := context.Background()
	// The first unknown kid spends the one refresh the interval allows...
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodES256, rogueEC, goodClaims(), nil)); reasonOf(err) != ReasonUnknownKey {
		t.Fatalf("made-up kid: %v", err)
	}
	// ...so a genuinely new key must wait for the next scheduled fetch.
	late := signingKey{"ec-late", mustEC()}
	srv.serve(http.StatusOK, jwksJSON(t, published(ec), published(late)))
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodES256, late, goodClaims(), nil)); reasonOf(err) != ReasonUnknownKey {
		t.Fatalf("new kid within the interval: %v, want %q", err, ReasonUnknownKey)
	}
	if n := srv.hits.Load(); n != 2 {
		t.Errorf("fetches = %d, want 2 (start and one unknown kid)", n)
	}
}

func TestJWKSURLBackgroundRefreshDropsRevokedKeys(t *testing.T) {
	ec, _ := testKeys(t)
	next := signingKey{"ec-2", mustEC()}
	srv := newJWKSServer(t, jwksJSON(t, published(ec)))
	v := newVerifier(t, urlConfig(srv.URL), VerifierOptions{
		RefreshInterval:           20 * time.Millisecond,
		UnknownKeyRefreshInterval: time.Hour,
	})
	ctx := context.Background()
	old := sign(t, jwt.SigningMethodES256, ec, goodClaims(), nil)
	if _, err := v.Verify(ctx, old); err != nil {
		t.Fatal(err)
	}
	srv.serve(http.StatusOK, jwksJSON(t, published(next)))
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := v.Verify(ctx, old)
		if reasonOf(err) == ReasonUnknownKey {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("revoked key still verifies after 5s: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodES256, next, goodClaims(), nil)); err != nil {
		t.Fatalf("new key after background refresh: %v", err)
	}
}

func TestVerifierCloseStopsRefresh(t *testing.T) {
	ec, _ := testKeys(t)
	srv := newJWKSServer(t, jwksJSON(t, published(ec)))
	v, err := NewVerifier(withKeys(VerifierOptions{RefreshInterval: 5 * time.Millisecond}, urlConfig(srv.URL)))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.hits.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatal("background refresh never ran")
		}
		time.Sleep(5 * time.Millisecond)
	}
	v.Close()
	v.Close()                         // idempotent
	time.Sleep(20 * time.Millisecond) // let a fetch in flight at Close end
	after := srv.hits.Load()
	time.Sleep(100 * time.Millisecond)
	if n := srv.hits.Load(); n != after {
		t.Errorf("fetches went on after Close: %d -> %d", after, n)
	}
}

func TestJWKSURLUnavailableAtStart(t *testing.T) {
	ec, _ := testKeys(t)
	srv := newJWKSServer(t, []byte("upstream down"))
	srv.serve(http.StatusServiceUnavailable, []byte("upstream down"))
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	v := newVerifier(t, urlConfig(srv.URL), VerifierOptions{Logger: logger, UnknownKeyRefreshInterval: time.Millisecond})
	ctx := context.Background()
	if err := v.Check(ctx); err == nil {
		t.Fatal("Check passed with no keys fetched")
	}
	if !strings.Contains(logs.String(), "JWKS fetch failed") {
		t.Errorf("the failed fetch was not logged: %q", logs.String())
	}
	tok := sign(t, jwt.SigningMethodES256, ec, goodClaims(), nil)
	if _, err := v.Verify(ctx, tok); reasonOf(err) != ReasonUnknownKey {
		t.Fatalf("Verify with no keys: %v, want %q", err, ReasonUnknownKey)
	}
	if strings.Contains(logs.String(), tok[len(tok)-20:]) {
		t.Errorf("the log quotes the token")
	}
	// The issuer comes back: the next token is verified after the
	// unknown-kid refresh.
	srv.serve(http.StatusOK, jwksJSON(t, published(ec)))
	time.Sleep(5 * time.Millisecond) // let the limiter allow one more fetch
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("Verify after the issuer came back: %v", err)
	}
	if err := v.Check(ctx); err != nil {
		t.Errorf("Check after recovery: %v", err)
	}
}

func TestJWKSURLResponseTooLarge(t *testing.T) {
	ec, _ := testKeys(t)
	set := jwksJSON(t, published(ec))
	// Valid JSON with the key, padded past the limit with whitespace.
	big := append(bytes.Repeat([]byte(" "), maxJWKSBytes), set...)
	srv := newJWKSServer(t, big)
	v := newVerifier(t, urlConfig(srv.URL), VerifierOptions{Logger: slog.New(slog.DiscardHandler)})
	if err := v.Check(context.Background()); err == nil {
		t.Fatal("a key set larger than the limit was loaded")
	}
}

func TestJWKSURLWithDevAndFile(t *testing.T) {
	ec, rs := testKeys(t)
	srv := newJWKSServer(t, jwksJSON(t, published(rs)))
	cfg := urlConfig(srv.URL)
	cfg.JWKSFile = writeFile(t, "jwks.json", jwksJSON(t, published(ec)))
	cfg.DevKeyFile = t.TempDir() + "/dev.pem"
	v := newVerifier(t, cfg, VerifierOptions{})
	ctx := context.Background()
	for _, tok := range []string{
		sign(t, jwt.SigningMethodES256, ec, goodClaims(), nil),
		sign(t, jwt.SigningMethodRS256, rs, goodClaims(), nil),
	} {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Errorf("Verify: %v", err)
		}
	}
	minted, err := Mint(cfg, MintOptions{Country: "DE", Purpose: "TREAT", Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, minted); err != nil {
		t.Errorf("dev token: %v", err)
	}
}

func TestCheckJWKSURL(t *testing.T) {
	tests := []struct {
		url      string
		insecure bool
		ok       bool
	}{
		{"https://idp.example.org/jwks", false, true},
		{"http://127.0.0.1:9000/jwks", false, true},
		{"http://[::1]:9000/jwks", false, true},
		{"http://localhost/jwks", false, true},
		{"http://idp.example.org/jwks", false, false},
		{"http://idp.example.org/jwks", true, true},
		{"ftp://idp.example.org/jwks", true, false},
		{"idp.example.org/jwks", false, false},
		{"", false, false},
	}
	for _, tc := range tests {
		err := checkJWKSURL(tc.url, tc.insecure)
		if (err == nil) != tc.ok {
			t.Errorf("checkJWKSURL(%q, insecure=%v) = %v, want ok=%v", tc.url, tc.insecure, err, tc.ok)
		}
	}
}
