package auth

import (
	"errors"
	"fmt"
	"strings"
)

// MaxTokenBytes bounds the length of a bearer token. Real access tokens
// with many scopes stay far below it; anything longer is refused before
// any decoding work is spent on it.
const MaxTokenBytes = 16 << 10

// BearerToken extracts the token from an Authorization header value
// ("Bearer <token>", RFC 6750 section 2.1). The scheme is matched without
// regard to case; spaces or tabs around and between the two parts are
// allowed. The token must be non-empty b64token characters (letters,
// digits, "-._~+/", then optional "=" padding) and at most MaxTokenBytes
// long. Every failure wraps ErrNoToken; the message never quotes the header.
//
// The caller must refuse a request with more than one Authorization header
// before calling this: which of them is meant is not knowable here.
func BearerToken(header string) (string, error) {
	h := strings.Trim(header, " \t")
	if h == "" {
		return "", ErrNoToken
	}
	scheme, rest, ok := strings.Cut(h, " ")
	if !ok {
		// A tab is linear whitespace too.
		scheme, rest, ok = strings.Cut(h, "\t")
	}
	if !ok {
		return "", fmt.Errorf("%w: Authorization header is not \"Bearer <token>\"", ErrNoToken)
	}
	if !strings.EqualFold(scheme, "Bearer") {
		return "", fmt.Errorf("%w: Authorization scheme is not Bearer", ErrNoToken)
	}
	tok := strings.TrimLeft(rest, " \t")
	if tok == "" {
		return "", fmt.Errorf("%w: empty bearer token", ErrNoToken)
	}
	if len(tok) > MaxTokenBytes {
		return "", fmt.Errorf("%w: bearer token longer than %d bytes", ErrNoToken, MaxTokenBytes)
	}
	if !isB64Token(tok) {
		return "", fmt.Errorf("%w: bearer token has characters outside the b64token set", ErrNoToken)
	}
	return tok, nil
}

// isB64Token reports whether s matches RFC 6750's
// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' {
			continue
		}
		break
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// Challenge is the WWW-Authenticate header value (RFC 6750 section 3) for
// a request refused with err: no error code when no token came, since the
// client may simply not know authentication is needed;
// error="invalid_request" for ErrAmbiguousCredentials;
// error="invalid_token" with the failed check (a fixed Reason, never token
// content) for ErrInvalidToken; error="insufficient_scope" for any other
// error. realm names the protected space, e.g. "mhg"; it must not contain a
// double quote.
func Challenge(realm string, err error) string {
	head := `Bearer realm="` + realm + `"`
	var te *TokenError
	switch {
	case errors.Is(err, ErrNoToken):
		return head
	case errors.Is(err, ErrAmbiguousCredentials):
		return head + `, error="invalid_request"`
	case errors.As(err, &te) && te.Reason != ReasonMissingSubject:
		return head + `, error="invalid_token", error_description="` + string(te.Reason) + `"`
	case errors.Is(err, ErrInvalidToken):
		return head + `, error="invalid_token"`
	default:
		return head + `, error="insufficient_scope"`
	}
}
