package auth

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// seedLines returns the non-empty, non-comment lines of a testdata file.
func seedLines(f *testing.F, name string) []string {
	f.Helper()
	file, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		f.Fatal(err)
	}
	defer file.Close()
	var out []string
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 0, 64<<10), MaxTokenBytes*2)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		f.Fatal(err)
	}
	if len(out) == 0 {
		f.Fatalf("testdata/%s has no seeds", name)
	}
	return out
}

func FuzzBearerToken(f *testing.F) {
	for _, s := range seedLines(f, "headers.txt") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		tok, err := BearerToken(header)
		if err != nil {
			if !errors.Is(err, ErrNoToken) {
				t.Fatalf("error %v does not wrap ErrNoToken", err)
			}
			if tok != "" {
				t.Fatalf("token %q returned with an error", tok)
			}
			return
		}
		if tok == "" || len(tok) > MaxTokenBytes || !isB64Token(tok) {
			t.Fatalf("returned %q, which is not a b64token within bounds", tok)
		}
		if !strings.Contains(header, tok) {
			t.Fatalf("token %q is not part of header %q", tok, header)
		}
		// The canonical header for the token gives the token back.
		if again, err := BearerToken("Bearer " + tok); err != nil || again != tok {
			t.Fatalf("round trip: %q, %v", again, err)
		}
	})
}

func FuzzVerify(f *testing.F) {
	ec, rs := testKeys(f)
	v := newVerifier(f, fileConfig(f), VerifierOptions{})
	for _, s := range seedLines(f, "tokens.txt") {
		f.Add(s)
	}
	// Genuinely signed but refused tokens: the fuzzer starts next to a
	// valid signature and must not find a way past the other checks.
	f.Add(sign(f, jwt.SigningMethodES256, ec, with(goodClaims(), map[string]any{"exp": testNow.Add(-time.Hour).Unix()}), nil))
	f.Add(sign(f, jwt.SigningMethodRS256, rs, with(goodClaims(), map[string]any{"aud": "https://elsewhere.example"}), nil))
	f.Add(sign(f, jwt.SigningMethodES256, ec, with(goodClaims(), map[string]any{"country": "de"}), nil))
	f.Add(sign(f, jwt.SigningMethodES256, rogueEC, goodClaims(), nil))
	f.Add(hmacForgery(f, rs.kid, publicPEM(f, rs), goodClaims()))
	f.Fuzz(func(t *testing.T, tok string) {
		r, err := v.Verify(context.Background(), tok)
		if err == nil {
			t.Fatalf("an arbitrary string verified: %q -> %+v", tok, r)
		}
		if !errors.Is(err, ErrInvalidToken) && !errors.Is(err, ErrNoToken) {
			t.Fatalf("error %v is neither ErrInvalidToken nor ErrNoToken", err)
		}
		if len(tok) >= 16 && strings.Contains(err.Error(), tok) {
			t.Fatalf("error %q quotes the token", err)
		}
	})
}

func FuzzParseScope(f *testing.F) {
	for _, s := range seedLines(f, "scopes.txt") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := ParseScope(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidScope) {
				t.Fatalf("error %v does not wrap ErrInvalidScope", err)
			}
			if len(s) >= 16 && strings.Contains(err.Error(), s) {
				t.Fatalf("error %q quotes the scope", err)
			}
			return
		}
		if sc.Perms == 0 {
			t.Fatalf("%q parsed with no permissions", s)
		}
	})
}

func FuzzPurposeOfUse(f *testing.F) {
	for _, s := range seedLines(f, "purposes.txt") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		code, err := parsePurpose(json.RawMessage(raw))
		if err != nil {
			if code != "" {
				t.Fatalf("code %q returned with an error", code)
			}
			return
		}
		if code != "" && !isPurposeCode(code) {
			t.Fatalf("%q gave code %q, which is not an HL7 v3 code", raw, code)
		}
	})
}
