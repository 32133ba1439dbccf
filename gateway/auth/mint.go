package auth

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Mint limits and defaults.
const (
	// DefaultMintTTL is the lifetime of a minted token when none is asked.
	DefaultMintTTL = 5 * time.Minute
	// MaxMintTTL is the longest lifetime Mint grants.
	MaxMintTTL = time.Hour
	// DefaultDevSubject is the "sub" of minted tokens when none is asked.
	DefaultDevSubject = "mhg-dev-client"
)

// MintOptions are the claims of a development token.
type MintOptions struct {
	// Org is the "org" claim; "" leaves it out.
	Org string
	// Country is the "country" claim, an upper-case ISO 3166-1 alpha-2
	// code; "" leaves it out.
	Country string
	// Role is the "role" claim; "" leaves it out.
	Role string
	// Purpose is the HL7 v3 purpose-of-use code (TREAT, ETREAT, ...),
	// written as a v3-ActReason Coding in "purpose_of_use"; "" leaves it
	// out (and the policy will then release nothing).
	Purpose string
	// Scopes are SMART resource scopes; an entry may hold several
	// separated by spaces. Nil means no "scope" claim.
	Scopes []string
	// TTL is how long the token is valid. Zero means DefaultMintTTL; more
	// than MaxMintTTL (or the verifier's max token age) is refused.
	TTL time.Duration
	// BreakGlass sets "break_glass": true.
	BreakGlass bool
	// Subject is the "sub" claim (the client id). "" means
	// DefaultDevSubject.
	Subject string
	// Now is the clock for iat, nbf and exp. Nil means time.Now.
	Now func() time.Time
}

// Mint signs a development token that a Verifier built from v accepts,
// with the development key in v.DevKeyFile (created if missing): ES256,
// kid the key's RFC 7638 thumbprint, iss v.Issuer, aud v.Audience, iat and
// nbf now, exp now+TTL, a random jti, and the claims in m. It refuses with
// ErrNotDevelopment when v names no development key, and refuses claims
// Verify would refuse (country, purpose and scope shapes, TTL bounds).
func Mint(v VerifierOptions, m MintOptions) (string, error) {
	if v.DevKeyFile == "" {
		return "", ErrNotDevelopment
	}
	if v.Issuer == "" || v.Audience == "" {
		return "", errors.New("mint: the issuer and the audience must be set")
	}
	ttl := m.TTL
	if ttl == 0 {
		ttl = DefaultMintTTL
	}
	maxAge := maxTokenAge(v)
	switch {
	case ttl < 0:
		return "", fmt.Errorf("mint: ttl %s is negative", ttl)
	case ttl > MaxMintTTL:
		return "", fmt.Errorf("mint: ttl %s is above the %s maximum", ttl, MaxMintTTL)
	case ttl > maxAge:
		return "", fmt.Errorf("mint: ttl %s is above the max token age %s", ttl, maxAge)
	}
	if m.Country != "" && !isCountry(m.Country) {
		return "", errors.New("mint: country must be an upper-case ISO 3166-1 alpha-2 code such as DE")
	}
	var purpose json.RawMessage
	if m.Purpose != "" {
		if !isPurposeCode(m.Purpose) {
			return "", errors.New("mint: purpose must be an upper-case HL7 v3 purpose-of-use code such as TREAT")
		}
		b, err := json.Marshal(coding{System: SystemActReason, Code: m.Purpose})
		if err != nil {
			return "", fmt.Errorf("mint: %w", err)
		}
		purpose = b
	}
	var scopes []string
	for _, entry := range m.Scopes {
		for _, s := range strings.Fields(entry) {
			if _, err := ParseScope(s); err != nil {
				return "", fmt.Errorf("mint: scope %d: %w", len(scopes)+1, err)
			}
			scopes = append(scopes, s)
		}
	}
	sub := m.Subject
	if sub == "" {
		sub = DefaultDevSubject
	}
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	key, err := LoadOrCreateDevKey(v.DevKeyFile)
	if err != nil {
		return "", fmt.Errorf("mint: %w", err)
	}
	kid, err := thumbprintP256(&key.PublicKey)
	if err != nil {
		return "", fmt.Errorf("mint: %w", err)
	}
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", fmt.Errorf("mint: %w", err)
	}
	// Whole seconds: NumericDate is seconds, and a truncated iat must not
	// push exp-iat past the TTL.
	t := now().Truncate(time.Second)
	claims := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    v.Issuer,
			Subject:   sub,
			Audience:  jwt.ClaimStrings{v.Audience},
			IssuedAt:  jwt.NewNumericDate(t),
			NotBefore: jwt.NewNumericDate(t),
			ExpiresAt: jwt.NewNumericDate(t.Add(ttl)),
			ID:        base64.RawURLEncoding.EncodeToString(jti[:]),
		},
		Org:          m.Org,
		Country:      m.Country,
		Role:         m.Role,
		Scope:        strings.Join(scopes, " "),
		BreakGlass:   m.BreakGlass,
		PurposeOfUse: purpose,
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	tok.Header["kid"] = kid
	signed, err := tok.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("mint: sign: %w", err)
	}
	return signed, nil
}
