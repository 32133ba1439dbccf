package auth

import (
	"errors"
	"fmt"
)

// Sentinel errors the HTTP layer branches on.
var (
	// ErrNoToken means the request carries no bearer token, or an
	// Authorization header that is not "Bearer <token>". Answer 401 with a
	// WWW-Authenticate: Bearer challenge.
	ErrNoToken = errors.New("no bearer token")
	// ErrInvalidToken means a token was given but failed a check (format,
	// algorithm, key, signature, time, issuer, audience, lifetime or a
	// malformed claim). Answer 401 with error="invalid_token". Errors
	// returned by Verify are *TokenError values that match it.
	ErrInvalidToken = errors.New("invalid bearer token")
	// ErrInsufficient means the token is genuine and current but lacks a
	// claim the gateway cannot work without (today: "sub", the client id
	// every audit record names). Answer 403: the client authenticated, but
	// its issuer must put the claim in before the gateway can serve it.
	ErrInsufficient = errors.New("bearer token lacks a required claim")
	// ErrNotDevelopment means Mint was asked to sign without a development
	// key (VerifierOptions.DevKeyFile; auth.dev: true in the configuration).
	ErrNotDevelopment = errors.New("tokens can only be minted with the development key (auth.dev: true)")
	// ErrAmbiguousCredentials means a request carries more than one
	// Authorization header: which is meant is not knowable. Answer 401
	// with error="invalid_request".
	ErrAmbiguousCredentials = errors.New("more than one Authorization header")
	// ErrInvalidScope means a string is not a SMART resource scope.
	ErrInvalidScope = errors.New("not a SMART resource scope")
)

// Reason names the check a token failed. Its values are fixed strings, fit
// for logs, metrics labels and audit records; none carries token content.
type Reason string

// Reasons a token is refused.
const (
	ReasonMalformed      Reason = "malformed"        // not a compact JWS, bad base64 or JSON, too long
	ReasonAlgorithm      Reason = "algorithm"        // alg other than RS256/ES256, including "none"
	ReasonHeader         Reason = "header"           // a "crit" header, or a kid that is not a string
	ReasonMissingKeyID   Reason = "missing_kid"      // no "kid" header
	ReasonUnknownKey     Reason = "unknown_key"      // kid not in the key set, even after a refresh
	ReasonKeyMismatch    Reason = "key_mismatch"     // the key's type, curve, size, alg or use does not fit alg
	ReasonSignature      Reason = "signature"        // the signature does not verify
	ReasonExpired        Reason = "expired"          // exp is past (beyond the clock skew)
	ReasonNotYetValid    Reason = "not_yet_valid"    // nbf is ahead (beyond the clock skew)
	ReasonIssuedInFuture Reason = "issued_in_future" // iat is ahead (beyond the clock skew)
	ReasonIssuer         Reason = "issuer"           // iss missing or not the configured issuer
	ReasonAudience       Reason = "audience"         // aud missing or without the configured audience
	ReasonMissingExpiry  Reason = "missing_exp"      // no exp claim
	ReasonLifetime       Reason = "lifetime"         // exp-iat (or exp-now) above the maximum token age
	ReasonClaim          Reason = "claim"            // a gateway claim (country, purpose_of_use, ...) is malformed
	ReasonMissingSubject Reason = "missing_sub"      // no "sub"; matches ErrInsufficient, not ErrInvalidToken
)

// TokenError is what Verify returns for a token it refuses. Its message
// names the failed check and never quotes the token or its claims, so it
// may be logged. errors.Is(err, ErrInvalidToken) holds for every reason
// but ReasonMissingSubject, which matches ErrInsufficient.
type TokenError struct {
	// Reason is the failed check.
	Reason Reason
	// Detail is a fixed, log-safe explanation, or "".
	Detail string
	// cause is a sentinel from golang-jwt (jwt.ErrTokenExpired, ...) or
	// nil; never an error whose text holds token content.
	cause error
}

func (e *TokenError) Error() string {
	head := ErrInvalidToken.Error()
	if e.Reason == ReasonMissingSubject {
		head = ErrInsufficient.Error()
	}
	if e.Detail == "" {
		return fmt.Sprintf("%s: %s", head, e.Reason)
	}
	return fmt.Sprintf("%s: %s: %s", head, e.Reason, e.Detail)
}

// Is makes errors.Is(err, ErrInvalidToken) (or ErrInsufficient) hold.
func (e *TokenError) Is(target error) bool {
	if e.Reason == ReasonMissingSubject {
		return target == ErrInsufficient
	}
	return target == ErrInvalidToken
}

// Unwrap returns the golang-jwt sentinel behind the refusal, if any.
func (e *TokenError) Unwrap() error { return e.cause }

func refuse(r Reason, detail string) *TokenError {
	return &TokenError{Reason: r, Detail: detail}
}
