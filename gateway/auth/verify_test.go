package auth

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// rawJWS assembles a compact JWS from JSON header and payload and a raw
// signature, for tokens no library would produce.
func rawJWS(t testing.TB, header, payload any, sig []byte) string {
	t.Helper()
	enc := base64.RawURLEncoding
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	p, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	return enc.EncodeToString(h) + "." + enc.EncodeToString(p) + "." + enc.EncodeToString(sig)
}

// hmacForgery signs claims with HS256 keyed by the given bytes, as an
// attacker would with a public key they downloaded.
func hmacForgery(t testing.TB, kid string, secret []byte, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func publicPEM(t testing.TB, k signingKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.public())
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func TestVerify(t *testing.T) {
	ec, rs := testKeys(t)
	v := newVerifier(t, fileConfig(t), VerifierOptions{})
	good := goodClaims()
	at := func(d time.Duration) int64 { return testNow.Add(d).Unix() }
	// keyServer is where forged tokens point jku and x5u: it serves the
	// forger's key, and must never be asked.
	var keyRequests atomic.Int32
	keyServer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		keyRequests.Add(1)
		_, _ = w.Write(jwksJSON(t, jwkEntry{kid: ec.kid, key: rogueEC.public()}))
	}))
	t.Cleanup(func() {
		keyServer.Close()
		if n := keyRequests.Load(); n != 0 {
			t.Errorf("the verifier fetched keys from a token's header URL %d times", n)
		}
	})

	tests := []struct {
		name  string
		token func(t *testing.T) string
		want  Reason // "" means accepted
	}{
		{"ES256 accepted", func(t *testing.T) string { return sign(t, jwt.SigningMethodES256, ec, good, nil) }, ""},
		{"RS256 accepted", func(t *testing.T) string { return sign(t, jwt.SigningMethodRS256, rs, good, nil) }, ""},
		{"aud array holding ours accepted", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, ec, with(good, map[string]any{"aud": []string{"https://other.example", testAudience}}), nil)
		}, ""},
		{"expired within skew accepted", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, ec, with(good, map[string]any{"exp": at(-20 * time.Second)}), nil)
		}, ""},
		{"nbf within skew accepted", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, ec, with(good, map[string]any{"nbf": at(20 * time.Second)}), nil)
		}, ""},
		{"no nbf accepted", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, ec, with(good, map[string]any{"nbf": nil}), nil)
		}, ""},
		{"no iat with near exp accepted", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, ec, with(good, map[string]any{"iat": nil}), nil)
		}, ""},
		{"lifetime exactly the maximum accepted", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, ec, with(good, map[string]any{"iat": at(-30 * time.Minute), "exp": at(30 * time.Minute)}), nil)
		}, ""},

		{"expired", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, ec, with(good, map[string]any{"exp": at(-time.Minute)}), nil)
		}, ReasonExpired},
		{"not yet valid", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, ec, with(good, map[string]any{"nbf": at(2 * time.Minute)}), nil)
		}, ReasonNotYetValid},
		{"issued in the future", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, ec, with(good, map[string]any{"iat": at(2 * time.Minute)}), nil)
		}, ReasonIssuedInFuture},
		{"no exp", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, ec, with(good, map[string]any{"exp": nil}), nil)
		}, ReasonMissingExpiry},
		{"wrong iss", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, ec, with(good, map[string]any{"iss": "https://idp.example.org/realms/other"}), nil)
		}, ReasonIssuer},
		{"iss with trailing slash", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, ec, with(good, map[string]any{"iss": testIssuer + "/"}), nil)
		}, ReasonIssuer},
		{"no iss", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, ec, with(good, map[string]any{"iss": nil}), nil)
		}, ReasonIssuer},
		{"wrong aud", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, ec, with(good, map[string]any{"aud": "https://other-gateway.example.org/fhir"}), nil)
		}, ReasonAudience},
		{"aud array without ours", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, ec, with(good, map[string]any{"aud": []string{"https://a.example", "https://b.example"}}), nil)
		}, ReasonAudience},
		{"no aud", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, ec, with(good, map[string]any{"aud": nil}), nil)
		}, ReasonAudience},
		{"exp-iat above the maximum age", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, ec, with(good, map[string]any{"iat": at(-10 * time.Minute), "exp": at(55 * time.Minute)}), nil)
		}, ReasonLifetime},
		{"no iat and exp too far ahead", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, ec, with(good, map[string]any{"iat": nil, "exp": at(2 * time.Hour)}), nil)
		}, ReasonLifetime},

		{"alg none, empty signature", func(t *testing.T) string {
			s, err := jwt.NewWithClaims(jwt.SigningMethodNone, good).SignedString(jwt.UnsafeAllowNoneSignatureType)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, ReasonAlgorithm},
		{"alg NONE with kid", func(t *testing.T) string {
			return rawJWS(t, map[string]any{"alg": "NONE", "kid": ec.kid}, good, nil)
		}, ReasonAlgorithm},
		{"alg none with a copied signature", func(t *testing.T) string {
			_, _, sig := segments(t, sign(t, jwt.SigningMethodES256, ec, good, nil))
			b, _ := base64.RawURLEncoding.DecodeString(sig)
			return rawJWS(t, map[string]any{"alg": "none", "kid": ec.kid}, good, b)
		}, ReasonAlgorithm},
		{"HS256 keyed with the RSA public key PEM", func(t *testing.T) string {
			return hmacForgery(t, rs.kid, publicPEM(t, rs), good)
		}, ReasonAlgorithm},
		{"HS256 keyed with the EC public key PEM", func(t *testing.T) string {
			return hmacForgery(t, ec.kid, publicPEM(t, ec), good)
		}, ReasonAlgorithm},
		{"PS256 is not accepted", func(t *testing.T) string { return sign(t, jwt.SigningMethodPS256, rs, good, nil) }, ReasonAlgorithm},
		{"ES384 is not accepted", func(t *testing.T) string {
			return rawJWS(t, map[string]any{"alg": "ES384", "kid": ec.kid}, good, make([]byte, 96))
		}, ReasonAlgorithm},
		{"unknown alg", func(t *testing.T) string {
			return rawJWS(t, map[string]any{"alg": "XS999", "kid": ec.kid}, good, []byte("x"))
		}, ReasonAlgorithm},

		{"tampered payload", func(t *testing.T) string {
			h, _, s := segments(t, sign(t, jwt.SigningMethodES256, ec, good, nil))
			p, _ := json.Marshal(with(good, map[string]any{"country": "NL"}))
			return h + "." + base64.RawURLEncoding.EncodeToString(p) + "." + s
		}, ReasonSignature},
		{"tampered header kid to the RSA key", func(t *testing.T) string {
			_, p, s := segments(t, sign(t, jwt.SigningMethodRS256, rs, good, nil))
			h, _ := json.Marshal(map[string]any{"alg": "RS256", "typ": "JWT", "kid": "rsa-1", "x": 1})
			return base64.RawURLEncoding.EncodeToString(h) + "." + p + "." + s
		}, ReasonSignature},
		{"published kid, other key", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, signingKey{ec.kid, rogueEC.signer}, good, nil)
		}, ReasonSignature},
		{"published RSA kid, other key", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodRS256, signingKey{rs.kid, rogueRSA.signer}, good, nil)
		}, ReasonSignature},
		{"own key embedded in a jwk header", func(t *testing.T) string {
			pub := rogueEC.public()
			j := jwksJSON(t, jwkEntry{kid: ec.kid, key: pub})
			var set struct{ Keys []map[string]any }
			if err := json.Unmarshal(j, &set); err != nil {
				t.Fatal(err)
			}
			return sign(t, jwt.SigningMethodES256, signingKey{ec.kid, rogueEC.signer}, good, map[string]any{"jwk": set.Keys[0]})
		}, ReasonSignature},
		{"signature truncated", func(t *testing.T) string {
			h, p, s := segments(t, sign(t, jwt.SigningMethodES256, ec, good, nil))
			b, _ := base64.RawURLEncoding.DecodeString(s)
			return h + "." + p + "." + base64.RawURLEncoding.EncodeToString(b[:len(b)-3])
		}, ReasonSignature},
		{"signature base64 not canonical", func(t *testing.T) string {
			// 64 signature bytes take 86 base64 characters, whose last
			// 4 bits are padding; setting them keeps the bytes the same
			// for a lenient decoder.
			tok := sign(t, jwt.SigningMethodES256, ec, good, nil)
			last := tok[len(tok)-1]
			alphabet := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
			i := strings.IndexByte(alphabet, last)
			return tok[:len(tok)-1] + string(alphabet[i|0x0f])
		}, ReasonMalformed},

		{"unknown kid", func(t *testing.T) string { return sign(t, jwt.SigningMethodES256, rogueEC, good, nil) }, ReasonUnknownKey},
		{"no kid", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, ec, good, map[string]any{"kid": nil})
		}, ReasonMissingKeyID},
		{"empty kid", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, ec, good, map[string]any{"kid": ""})
		}, ReasonMissingKeyID},
		{"kid not a string", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, ec, good, map[string]any{"kid": 7})
		}, ReasonHeader},
		{"crit header", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, ec, good, map[string]any{"crit": []string{"exp"}, "exp": 1})
		}, ReasonHeader},
		{"ES256 naming the RSA key", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, signingKey{rs.kid, ec.signer}, good, nil)
		}, ReasonKeyMismatch},
		{"RS256 naming the EC key", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodRS256, signingKey{ec.kid, rs.signer}, good, nil)
		}, ReasonKeyMismatch},

		{"bad country lower case", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, ec, with(good, map[string]any{"country": "de"}), nil)
		}, ReasonClaim},
		{"bad country alpha-3", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, ec, with(good, map[string]any{"country": "DEU"}), nil)
		}, ReasonClaim},
		{"bad country digits", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, ec, with(good, map[string]any{"country": "D1"}), nil)
		}, ReasonClaim},
		{"country not a string", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, ec, with(good, map[string]any{"country": 49}), nil)
		}, ReasonMalformed},
		{"break_glass not a boolean", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, ec, with(good, map[string]any{"break_glass": "true"}), nil)
		}, ReasonMalformed},
		{"exp not a number", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, ec, with(good, map[string]any{"exp": "tomorrow"}), nil)
		}, ReasonMalformed},
		// RFC 7519 NumericDate is a JSON number; a string holding one is
		// not a date.
		{"exp a numeric string", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, ec, with(good, map[string]any{"exp": strconv.FormatInt(at(5*time.Minute), 10)}), nil)
		}, ReasonMalformed},
		{"nbf a numeric string", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, ec, with(good, map[string]any{"nbf": strconv.FormatInt(at(-time.Minute), 10)}), nil)
		}, ReasonMalformed},
		{"iat a numeric string", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, ec, with(good, map[string]any{"iat": strconv.FormatInt(at(-time.Minute), 10)}), nil)
		}, ReasonMalformed},
		// Keys come from the configured key set only: headers that point
		// elsewhere are ignored, on good tokens and forged ones alike.
		{"jku, x5u and jwk headers on a good token ignored", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, ec, good, map[string]any{
				"jku": keyServer.URL + "/jwks", "x5u": keyServer.URL + "/cert.pem", "jwk": map[string]any{"kty": "EC"},
			})
		}, ""},
		{"forged token pointing jku at the forger's keys", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, signingKey{ec.kid, rogueEC.signer}, good, map[string]any{"jku": keyServer.URL + "/jwks"})
		}, ReasonSignature},
		{"forged token with an unknown kid pointing x5u at the forger's certificate", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, rogueEC, good, map[string]any{"x5u": keyServer.URL + "/cert.pem"})
		}, ReasonUnknownKey},
		{"two purposes", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, ec, with(good, map[string]any{"purpose_of_use": []string{"TREAT", "ETREAT"}}), nil)
		}, ReasonClaim},
		{"no sub", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, ec, with(good, map[string]any{"sub": nil}), nil)
		}, ReasonMissingSubject},

		{"not a JWS", func(*testing.T) string { return "not-a-token" }, ReasonMalformed},
		{"two segments", func(*testing.T) string { return "eyJhbGciOiJFUzI1NiJ9.e30" }, ReasonMalformed},
		{"header not JSON", func(*testing.T) string { return "bm90IGpzb24.e30.c2ln" }, ReasonMalformed},
		{"too long", func(*testing.T) string { return strings.Repeat("a", MaxTokenBytes+1) }, ReasonMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := tc.token(t)
			got, err := v.Verify(context.Background(), tok)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if got.ClientID != "client-7" || got.Country != "DE" || got.PurposeOfUse != "TREAT" {
					t.Errorf("Requester = %+v", got)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify accepted the token, want refusal %q (requester %+v)", tc.want, got)
			}
			var te *TokenError
			if !errors.As(err, &te) {
				t.Fatalf("error %v (%T) is not a *TokenError", err, err)
			}
			if te.Reason != tc.want {
				t.Errorf("reason = %q (%v), want %q", te.Reason, err, tc.want)
			}
			wantSentinel := ErrInvalidToken
			if tc.want == ReasonMissingSubject {
				wantSentinel = ErrInsufficient
				if errors.Is(err, ErrInvalidToken) {
					t.Errorf("missing sub also matches ErrInvalidToken")
				}
			}
			if !errors.Is(err, wantSentinel) {
				t.Errorf("errors.Is(%v, %v) = false", err, wantSentinel)
			}
			if !strings.Contains(err.Error(), string(tc.want)) {
				t.Errorf("message %q does not name the failed check %q", err, tc.want)
			}
			if len(tok) > 20 && strings.Contains(err.Error(), tok[len(tok)-20:]) {
				t.Errorf("message %q quotes the token", err)
			}
			if d := cmp.Diff(Requester{}, got, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("refused token still returned a requester:\n%s", d)
			}
		})
	}
}

func TestVerifyRequester(t *testing.T) {
	ec, _ := testKeys(t)
	v := newVerifier(t, fileConfig(t), VerifierOptions{})
	tok := sign(t, jwt.SigningMethodES256, ec, with(goodClaims(), map[string]any{
		"break_glass": true,
		"scope":       "system/Patient.rs  openid system/*.rs",
	}), nil)
	got, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	want := Requester{
		ClientID:     "client-7",
		Org:          "urn:oid:1.2.276.0.76.4.8",
		Country:      "DE",
		Role:         "clinician",
		PurposeOfUse: "TREAT",
		Scopes:       []string{"system/Patient.rs", "openid", "system/*.rs"},
		BreakGlass:   true,
		TokenID:      "tok-1",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Requester (-want +got):\n%s", d)
	}
}

func TestVerifyNoToken(t *testing.T) {
	v := newVerifier(t, fileConfig(t), VerifierOptions{})
	if _, err := v.Verify(context.Background(), ""); !errors.Is(err, ErrNoToken) {
		t.Fatalf("Verify(\"\") = %v, want ErrNoToken", err)
	}
}

func TestVerifyPurposeForms(t *testing.T) {
	ec, _ := testKeys(t)
	v := newVerifier(t, fileConfig(t), VerifierOptions{})
	coding := func(system, code string) map[string]any { return map[string]any{"system": system, "code": code} }
	iua := func(p any) map[string]any {
		return map[string]any{"ihe_iua": map[string]any{"subject_organization_id": "x", "purpose_of_use": p}}
	}
	tests := []struct {
		name    string
		changes map[string]any
		want    string // purpose; "-" means refused
	}{
		{"string", map[string]any{"purpose_of_use": "ETREAT"}, "ETREAT"},
		{"ActReason Coding", map[string]any{"purpose_of_use": coding(SystemActReason, "TREAT")}, "TREAT"},
		{"PurposeOfUse Coding", map[string]any{"purpose_of_use": coding(SystemPurposeOfUse, "PUBHLTH")}, "PUBHLTH"},
		{"ActReason OID Coding", map[string]any{"purpose_of_use": coding(SystemActReasonOID, "COC")}, "COC"},
		{"Coding with display", map[string]any{"purpose_of_use": map[string]any{"system": SystemActReason, "code": "TREAT", "display": "treatment"}}, "TREAT"},
		{"array of one string", map[string]any{"purpose_of_use": []any{"HRESCH"}}, "HRESCH"},
		{"array of one Coding", map[string]any{"purpose_of_use": []any{coding(SystemActReason, "PATRQT")}}, "PATRQT"},
		{"IUA nested Coding", map[string]any{"purpose_of_use": nil, "extensions": iua(coding(SystemActReason, "TREAT"))}, "TREAT"},
		{"IUA nested array", map[string]any{"purpose_of_use": nil, "extensions": iua([]any{coding(SystemActReason, "ETREAT")})}, "ETREAT"},
		{"IUA nested agreeing with top level", map[string]any{"purpose_of_use": "TREAT", "extensions": iua("TREAT")}, "TREAT"},
		{"IUA without purpose", map[string]any{"purpose_of_use": nil, "extensions": map[string]any{"ihe_iua": map[string]any{}}}, ""},
		{"absent", map[string]any{"purpose_of_use": nil}, ""},
		{"null", map[string]any{"purpose_of_use": json.RawMessage("null")}, ""},

		{"IUA nested disagreeing with top level", map[string]any{"purpose_of_use": "TREAT", "extensions": iua("HMARKT")}, "-"},
		{"IUA nested malformed", map[string]any{"purpose_of_use": nil, "extensions": iua(5)}, "-"},
		{"two in an array", map[string]any{"purpose_of_use": []any{"TREAT", "ETREAT"}}, "-"},
		{"empty array", map[string]any{"purpose_of_use": []any{}}, "-"},
		{"nested array", map[string]any{"purpose_of_use": []any{[]any{"TREAT"}}}, "-"},
		{"other system", map[string]any{"purpose_of_use": coding("http://snomed.info/sct", "TREAT")}, "-"},
		{"Coding without system", map[string]any{"purpose_of_use": map[string]any{"code": "TREAT"}}, "-"},
		{"lower-case code", map[string]any{"purpose_of_use": "treat"}, "-"},
		{"abstract code", map[string]any{"purpose_of_use": "_ActReason"}, "-"},
		{"empty string", map[string]any{"purpose_of_use": ""}, "-"},
		{"number", map[string]any{"purpose_of_use": 1}, "-"},
		{"boolean", map[string]any{"purpose_of_use": true}, "-"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := sign(t, jwt.SigningMethodES256, ec, with(goodClaims(), tc.changes), nil)
			got, err := v.Verify(context.Background(), tok)
			if tc.want == "-" {
				var te *TokenError
				if !errors.As(err, &te) || te.Reason != ReasonClaim {
					t.Fatalf("Verify = %+v, %v; want a %q refusal", got, err, ReasonClaim)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got.PurposeOfUse != tc.want {
				t.Errorf("PurposeOfUse = %q, want %q", got.PurposeOfUse, tc.want)
			}
		})
	}
}

func TestVerifyClockSkewBounds(t *testing.T) {
	ec, _ := testKeys(t)
	exp := func(d time.Duration) string {
		return sign(t, jwt.SigningMethodES256, ec, with(goodClaims(), map[string]any{
			"iat": testNow.Add(-20 * time.Minute).Unix(),
			"nbf": testNow.Add(-20 * time.Minute).Unix(),
			"exp": testNow.Add(d).Unix(),
		}), nil)
	}
	nbf := func(d time.Duration) string {
		return sign(t, jwt.SigningMethodES256, ec, with(goodClaims(), map[string]any{
			"iat": nil, "nbf": testNow.Add(d).Unix(), "exp": testNow.Add(d + 10*time.Minute).Unix(),
		}), nil)
	}
	tests := []struct {
		name  string
		skew  time.Duration
		token string
		want  Reason
	}{
		{"no skew, expired a second ago", 0, exp(-time.Second), ReasonExpired},
		{"30s skew, expired 20s ago", 30 * time.Second, exp(-20 * time.Second), ""},
		{"30s skew, expired 40s ago", 30 * time.Second, exp(-40 * time.Second), ReasonExpired},
		{"5m skew, expired 4m ago", 5 * time.Minute, exp(-4 * time.Minute), ""},
		{"10m skew is capped at 5m: expired 4m ago", 10 * time.Minute, exp(-4 * time.Minute), ""},
		{"10m skew is capped at 5m: expired 6m ago", 10 * time.Minute, exp(-6 * time.Minute), ReasonExpired},
		{"10m skew is capped at 5m: nbf 6m ahead", 10 * time.Minute, nbf(6 * time.Minute), ReasonNotYetValid},
		{"10m skew is capped at 5m: nbf 4m ahead", 10 * time.Minute, nbf(4 * time.Minute), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fileConfig(t)
			cfg.ClockSkew = tc.skew
			v := newVerifier(t, cfg, VerifierOptions{})
			_, err := v.Verify(context.Background(), tc.token)
			var te *TokenError
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Verify: %v", err)
			case tc.want != "" && (!errors.As(err, &te) || te.Reason != tc.want):
				t.Fatalf("Verify = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestVerifyMaxTokenAge(t *testing.T) {
	ec, _ := testKeys(t)
	cfg := fileConfig(t)
	cfg.MaxTokenAge = 5 * time.Minute
	v := newVerifier(t, cfg, VerifierOptions{})
	long := sign(t, jwt.SigningMethodES256, ec, with(goodClaims(), map[string]any{
		"iat": testNow.Add(-time.Minute).Unix(), "exp": testNow.Add(5 * time.Minute).Unix(),
	}), nil)
	var te *TokenError
	if _, err := v.Verify(context.Background(), long); !errors.As(err, &te) || te.Reason != ReasonLifetime {
		t.Fatalf("6m token with a 5m max age: %v, want %q", err, ReasonLifetime)
	}
	if _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodES256, ec, goodClaims(), nil)); err != nil {
		t.Fatalf("5m token with a 5m max age: %v", err)
	}
}

func TestNewVerifierConfigErrors(t *testing.T) {
	tests := []struct {
		name   string
		change func(*VerifierOptions)
		want   string
	}{
		{"no issuer", func(c *VerifierOptions) { c.Issuer = "" }, "issuer"},
		{"no audience", func(c *VerifierOptions) { c.Audience = "" }, "audience"},
		{"negative skew", func(c *VerifierOptions) { c.ClockSkew = -time.Second }, "clock skew"},
		{"negative max age", func(c *VerifierOptions) { c.MaxTokenAge = -time.Second }, "max token age"},
		{"no key source", func(c *VerifierOptions) { c.JWKSFile = "" }, "no keys"},
		{"missing JWKS file", func(c *VerifierOptions) { c.JWKSFile = "/nonexistent/jwks.json" }, "jwks file"},
		{"unreadable development key", func(c *VerifierOptions) { c.DevKeyFile = "/dev/null/key.pem" }, "development key"},
		{"JWKS URL not https", func(c *VerifierOptions) { c.JWKSURL = "http://idp.example.org/jwks" }, "JWKS URL"},
		{"JWKS URL relative", func(c *VerifierOptions) { c.JWKSURL = "/jwks" }, "JWKS URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fileConfig(t)
			tc.change(&cfg)
			v, err := NewVerifier(cfg)
			if err == nil {
				v.Close()
				t.Fatal("NewVerifier accepted the config")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}
