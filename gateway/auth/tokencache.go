package auth

import (
	"context"
	"crypto"
	"crypto/sha256"
	"slices"
	"time"

	"github.com/maypok86/otter/v2"
)

// DefaultTokenCacheEntries is VerifierOptions.TokenCacheEntries' zero
// value.
const DefaultTokenCacheEntries = 10000

// tokenCache remembers tokens the Verifier has verified, so that a client
// reusing its access token does not pay the signature check on every
// request. It is keyed by the SHA-256 of the token (the token itself is a
// credential and is not kept), and an entry is used only while the token
// has not expired (exp, without the clock skew allowance a full
// verification grants) and the key that verified it is still in the key
// set, unchanged: a key rotated out stops its tokens on the next request.
// Everything else Verify checks depends on the token alone.
type tokenCache struct {
	entries *otter.Cache[[sha256.Size]byte, verifiedToken]
}

type verifiedToken struct {
	requester Requester
	kid       string
	key       crypto.PublicKey
	verified  time.Time // a clock set back before it verifies afresh
	exp       time.Time
}

// newTokenCache returns a cache of at most size tokens; nil when size is
// negative (every token verified in full).
func newTokenCache(size int) *tokenCache {
	if size < 0 {
		return nil
	}
	if size == 0 {
		size = DefaultTokenCacheEntries
	}
	c, err := otter.New(&otter.Options[[sha256.Size]byte, verifiedToken]{
		MaximumSize: size,
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[[sha256.Size]byte, verifiedToken]) time.Duration {
			return e.Value.exp.Sub(e.Value.verified)
		}),
	})
	if err != nil {
		return nil
	}
	return &tokenCache{entries: c}
}

// get returns the Requester of a token verified before, if it may still
// be trusted at now.
func (v *Verifier) cachedRequester(ctx context.Context, sum [sha256.Size]byte, now time.Time) (Requester, bool) {
	if v.tokens == nil {
		return Requester{}, false
	}
	t, ok := v.tokens.entries.GetIfPresent(sum)
	if !ok {
		return Requester{}, false
	}
	if now.Before(t.verified) || !now.Before(t.exp) || !v.keyStillPresent(ctx, t.kid, t.key) {
		v.tokens.entries.Invalidate(sum)
		return Requester{}, false
	}
	r := t.requester
	r.Scopes = slices.Clone(r.Scopes)
	return r, true
}

// keyStillPresent reports whether the key set still holds key under kid.
func (v *Verifier) keyStillPresent(ctx context.Context, kid string, key crypto.PublicKey) bool {
	jwk, err := v.keys.KeyRead(ctx, kid)
	if err != nil {
		return false
	}
	k, ok := publicOf(jwk.Key()).(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(key)
}

// remember caches a token Verify has just verified in full.
func (v *Verifier) remember(sum [sha256.Size]byte, r Requester, kid string, key crypto.PublicKey, exp, now time.Time) {
	if v.tokens == nil || kid == "" || key == nil || !now.Before(exp) {
		return
	}
	r.Scopes = slices.Clone(r.Scopes)
	v.tokens.entries.Set(sum, verifiedToken{requester: r, kid: kid, key: key, verified: now, exp: exp})
}
