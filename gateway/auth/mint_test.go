package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func devConfig(t testing.TB) VerifierOptions {
	t.Helper()
	return VerifierOptions{
		DevKeyFile: filepath.Join(t.TempDir(), ".mhg", "dev-signing-key.pem"),
		Issuer:     "https://dev.mhg.invalid/issuer",
		Audience:   "http://127.0.0.1:8080/fhir",
		ClockSkew:  30 * time.Second,
	}
}

// payload decodes a token's claims without verifying it.
func payload(t *testing.T, tok string) map[string]any {
	t.Helper()
	_, p, _ := segments(t, tok)
	b, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMintRefusesNonDevelopmentConfig(t *testing.T) {
	// Keys from a JWKS file alone: there is no development key to sign with.
	_, err := Mint(fileConfig(t), MintOptions{Country: "DE", Purpose: "TREAT"})
	if !errors.Is(err, ErrNotDevelopment) {
		t.Fatalf("Mint = %v, want ErrNotDevelopment", err)
	}
}

func TestMintVerifyRoundTrip(t *testing.T) {
	cfg := devConfig(t)
	clock := func() time.Time { return testNow }
	tok, err := Mint(cfg, MintOptions{
		Org:        "urn:oid:2.16.528.1.1007.3.3",
		Country:    "NL",
		Role:       "clinician",
		Purpose:    "ETREAT",
		Scopes:     []string{"system/Patient.rs system/Observation.rs", "system/*.rs"},
		BreakGlass: true,
		Now:        clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	v := newVerifier(t, cfg, VerifierOptions{Now: clock})
	got, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	want := Requester{
		ClientID:     DefaultDevSubject,
		Org:          "urn:oid:2.16.528.1.1007.3.3",
		Country:      "NL",
		Role:         "clinician",
		PurposeOfUse: "ETREAT",
		Scopes:       []string{"system/Patient.rs", "system/Observation.rs", "system/*.rs"},
		BreakGlass:   true,
	}
	if d := cmp.Diff(want, got, cmpopts.IgnoreFields(Requester{}, "TokenID")); d != "" {
		t.Errorf("Requester (-want +got):\n%s", d)
	}
	if len(got.TokenID) < 16 {
		t.Errorf("TokenID %q is not a random jti", got.TokenID)
	}

	claims := payload(t, tok)
	if claims["iss"] != cfg.Issuer {
		t.Errorf("iss = %v", claims["iss"])
	}
	if exp, iat := claims["exp"].(float64), claims["iat"].(float64); exp-iat != DefaultMintTTL.Seconds() {
		t.Errorf("exp-iat = %v, want the default TTL %v", exp-iat, DefaultMintTTL)
	}
	if claims["nbf"] != claims["iat"] {
		t.Errorf("nbf %v != iat %v", claims["nbf"], claims["iat"])
	}
	// Two tokens never share a jti.
	tok2, err := Mint(cfg, MintOptions{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if payload(t, tok2)["jti"] == claims["jti"] {
		t.Error("two minted tokens share a jti")
	}
	// A token with no purpose, country or scopes still verifies; it is
	// the policy that refuses to release data for it.
	bare, err := v.Verify(context.Background(), tok2)
	if err != nil {
		t.Fatalf("Verify bare token: %v", err)
	}
	if bare.PurposeOfUse != "" || bare.Country != "" || len(bare.Scopes) != 0 {
		t.Errorf("bare token gave %+v", bare)
	}
}

func TestMintTokenFromAnotherDevKeyIsRefused(t *testing.T) {
	clock := func() time.Time { return testNow }
	mine := devConfig(t)
	theirs := devConfig(t) // same issuer and audience, another key file
	tok, err := Mint(theirs, MintOptions{Purpose: "TREAT", Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	v := newVerifier(t, mine, VerifierOptions{Now: clock})
	if _, err := v.Verify(context.Background(), tok); reasonOf(err) != ReasonUnknownKey {
		t.Fatalf("Verify = %v, want %q", err, ReasonUnknownKey)
	}
}

func TestMintExpiresAfterTTL(t *testing.T) {
	cfg := devConfig(t)
	cfg.ClockSkew = 0
	tok, err := Mint(cfg, MintOptions{TTL: 10 * time.Minute, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	at := func(d time.Duration) func() time.Time { return func() time.Time { return testNow.Add(d) } }
	inside := newVerifier(t, cfg, VerifierOptions{Now: at(9 * time.Minute)})
	if _, err := inside.Verify(context.Background(), tok); err != nil {
		t.Errorf("9m after minting: %v", err)
	}
	after := newVerifier(t, cfg, VerifierOptions{Now: at(11 * time.Minute)})
	if _, err := after.Verify(context.Background(), tok); reasonOf(err) != ReasonExpired {
		t.Errorf("11m after minting: %v, want %q", err, ReasonExpired)
	}
}

func TestMintRefusesBadOptions(t *testing.T) {
	tests := []struct {
		name string
		cfg  func(*VerifierOptions)
		opts MintOptions
		want string
	}{
		{"lower-case country", nil, MintOptions{Country: "de"}, "country"},
		{"alpha-3 country", nil, MintOptions{Country: "DEU"}, "country"},
		{"lower-case purpose", nil, MintOptions{Purpose: "treat"}, "purpose"},
		{"purpose with a space", nil, MintOptions{Purpose: "TRE AT"}, "purpose"},
		{"bad scope", nil, MintOptions{Scopes: []string{"system/Patient.rx"}}, "scope 1"},
		{"second scope bad", nil, MintOptions{Scopes: []string{"system/Patient.rs openid"}}, "scope 2"},
		{"TTL above an hour", nil, MintOptions{TTL: 61 * time.Minute}, "maximum"},
		{"negative TTL", nil, MintOptions{TTL: -time.Minute}, "negative"},
		{"TTL above the configured max age", func(c *VerifierOptions) { c.MaxTokenAge = 10 * time.Minute }, MintOptions{TTL: 20 * time.Minute}, "max token age"},
		{"no issuer", func(c *VerifierOptions) { c.Issuer = "" }, MintOptions{}, "issuer"},
		{"no key file", func(c *VerifierOptions) { c.DevKeyFile = "" }, MintOptions{}, "development key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := devConfig(t)
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			tok, err := Mint(cfg, tc.opts)
			if err == nil {
				t.Fatalf("Mint accepted the options: %s", tok)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}
