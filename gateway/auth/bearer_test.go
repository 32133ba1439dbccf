package auth

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestBearerToken(t *testing.T) {
	const tok = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
	tests := []struct {
		name   string
		header string
		want   string // "" means ErrNoToken
	}{
		{"canonical", "Bearer " + tok, tok},
		{"lower-case scheme", "bearer " + tok, tok},
		{"upper-case scheme", "BEARER " + tok, tok},
		{"several spaces", "Bearer    " + tok, tok},
		{"tab separator", "Bearer\t" + tok, tok},
		{"surrounding whitespace", "  Bearer " + tok + " \t", tok},
		{"padding", "Bearer abc+/~==", "abc+/~=="},
		{"opaque token", "Bearer 0123-abc_DEF.~", "0123-abc_DEF.~"},
		{"max length", "Bearer " + strings.Repeat("a", MaxTokenBytes), strings.Repeat("a", MaxTokenBytes)},

		{"empty", "", ""},
		{"blank", "   ", ""},
		{"scheme only", "Bearer", ""},
		{"scheme and space", "Bearer ", ""},
		{"basic", "Basic dXNlcjpwYXNz", ""},
		{"dpop", "DPoP " + tok, ""},
		{"token only", tok, ""},
		{"scheme prefix", "Bearerx " + tok, ""},
		{"two tokens", "Bearer " + tok + " " + tok, ""},
		{"comma", "Bearer a,b", ""},
		{"padding in the middle", "Bearer ab=c", ""},
		{"only padding", "Bearer ==", ""},
		{"quoted", `Bearer "` + tok + `"`, ""},
		{"non-ASCII", "Bearer tökén", ""},
		{"control character", "Bearer ab\x00c", ""},
		{"too long", "Bearer " + strings.Repeat("a", MaxTokenBytes+1), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := BearerToken(tc.header)
			if tc.want == "" {
				if !errors.Is(err, ErrNoToken) {
					t.Fatalf("BearerToken = %q, %v; want ErrNoToken", got, err)
				}
				if got != "" {
					t.Errorf("token %q returned with an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("BearerToken = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestChallenge(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"no token", ErrNoToken, `Bearer realm="mhg"`},
		{"malformed header", func() error { _, err := BearerToken("Basic x"); return err }(), `Bearer realm="mhg"`},
		{"expired", refuse(ReasonExpired, ""), `Bearer realm="mhg", error="invalid_token", error_description="expired"`},
		{"wrapped audience", fmt.Errorf("fhirapi: %w", refuse(ReasonAudience, "x")), `Bearer realm="mhg", error="invalid_token", error_description="audience"`},
		{"bare sentinel", ErrInvalidToken, `Bearer realm="mhg", error="invalid_token"`},
		{"two Authorization headers", ErrAmbiguousCredentials, `Bearer realm="mhg", error="invalid_request"`},
		{"missing sub", refuse(ReasonMissingSubject, ""), `Bearer realm="mhg", error="insufficient_scope"`},
		{"scope refusal", errors.New("scope does not allow read"), `Bearer realm="mhg", error="insufficient_scope"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Challenge("mhg", tc.err); got != tc.want {
				t.Errorf("Challenge = %s, want %s", got, tc.want)
			}
		})
	}
}
