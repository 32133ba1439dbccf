package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// Fixed test identity of the issuer and the gateway.
const (
	testIssuer   = "https://idp.example.org/realms/hospitals"
	testAudience = "https://gateway.example.org/fhir"
)

// testNow is the verifier's clock in tests; tokens are built around it.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// signingKey is a private key with the kid it is published under.
type signingKey struct {
	kid    string
	signer crypto.Signer
}

func (k signingKey) public() crypto.PublicKey { return k.signer.Public() }

var (
	keysOnce          sync.Once
	ecKey, rsaKey     signingKey // published in the test key set
	rogueEC, rogueRSA signingKey // never published
)

// testKeys generates the keys once per test binary: RSA generation is
// slow under the race detector.
func testKeys(t testing.TB) (ec, rs signingKey) {
	t.Helper()
	keysOnce.Do(func() {
		ecKey = signingKey{"ec-1", mustEC()}
		rsaKey = signingKey{"rsa-1", mustRSA(2048)}
		rogueEC = signingKey{"rogue-ec", mustEC()}
		rogueRSA = signingKey{"rogue-rsa", mustRSA(2048)}
	})
	return ecKey, rsaKey
}

func mustEC() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

func mustRSA(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return k
}

// jwkEntry is one key set entry: a public key and its metadata.
type jwkEntry struct {
	kid string
	key any
	alg jwkset.ALG
	use jwkset.USE
}

func published(k signingKey) jwkEntry { return jwkEntry{kid: k.kid, key: k.public()} }

// jwksJSON renders a JSON Web Key Set.
func jwksJSON(t testing.TB, entries ...jwkEntry) []byte {
	t.Helper()
	set := jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{}}
	for _, e := range entries {
		j, err := jwkset.NewJWKFromKey(e.key, jwkset.JWKOptions{
			Metadata: jwkset.JWKMetadataOptions{KID: e.kid, ALG: e.alg, USE: e.use},
			Marshal:  jwkset.JWKMarshalOptions{Private: true},
		})
		if err != nil {
			t.Fatalf("jwk %s: %v", e.kid, err)
		}
		set.Keys = append(set.Keys, j.Marshal())
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeFile writes b into a fresh temporary directory.
func writeFile(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// fileConfig are verifier options whose keys are the EC and RSA test keys
// in a JWKS file.
func fileConfig(t testing.TB) VerifierOptions {
	t.Helper()
	ec, rs := testKeys(t)
	return VerifierOptions{
		Issuer:    testIssuer,
		Audience:  testAudience,
		JWKSFile:  writeFile(t, "jwks.json", jwksJSON(t, published(ec), published(rs))),
		ClockSkew: 30 * time.Second,
	}
}

// newVerifier builds a verifier that trusts what keys names (issuer,
// audience, key sources, clock skew and token age), tuned by the other
// fields of tune, on the test clock unless tune sets one, and closes it
// after t.
func newVerifier(t testing.TB, keys VerifierOptions, tune VerifierOptions) *Verifier {
	t.Helper()
	opts := withKeys(tune, keys)
	if opts.Now == nil {
		opts.Now = func() time.Time { return testNow }
	}
	v, err := NewVerifier(opts)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	t.Cleanup(v.Close)
	return v
}

// goodClaims are claims every check accepts at testNow.
func goodClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss":            testIssuer,
		"aud":            testAudience,
		"sub":            "client-7",
		"iat":            testNow.Add(-time.Minute).Unix(),
		"nbf":            testNow.Add(-time.Minute).Unix(),
		"exp":            testNow.Add(4 * time.Minute).Unix(),
		"jti":            "tok-1",
		"org":            "urn:oid:1.2.276.0.76.4.8",
		"country":        "DE",
		"role":           "clinician",
		"purpose_of_use": "TREAT",
		"scope":          "system/Patient.rs system/Observation.rs",
	}
}

// with returns a copy of c with changes applied; a nil value deletes.
func with(c jwt.MapClaims, changes map[string]any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for k, v := range changes {
		if v == nil {
			delete(out, k)
			continue
		}
		out[k] = v
	}
	return out
}

// sign signs claims with k using alg, setting kid unless header says
// otherwise; header entries with a nil value are removed.
func sign(t testing.TB, alg jwt.SigningMethod, k signingKey, claims jwt.MapClaims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(alg, claims)
	tok.Header["kid"] = k.kid
	for name, v := range header {
		if v == nil {
			delete(tok.Header, name)
			continue
		}
		tok.Header[name] = v
	}
	s, err := tok.SignedString(k.signer)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

// segments splits a compact JWS into its three parts.
func segments(t testing.TB, tok string) (header, payload, sig string) {
	t.Helper()
	p := strings.Split(tok, ".")
	if len(p) != 3 {
		t.Fatalf("token has %d segments", len(p))
	}
	return p[0], p[1], p[2]
}

// withKeys is tune with the issuer, audience, key sources, clock skew and
// token age of keys.
func withKeys(tune, keys VerifierOptions) VerifierOptions {
	tune.Issuer, tune.Audience = keys.Issuer, keys.Audience
	tune.JWKSFile, tune.JWKSURL, tune.DevKeyFile = keys.JWKSFile, keys.JWKSURL, keys.DevKeyFile
	tune.ClockSkew, tune.MaxTokenAge = keys.ClockSkew, keys.MaxTokenAge
	return tune
}
