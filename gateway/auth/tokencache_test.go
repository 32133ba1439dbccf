package auth

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// cachedTokens is how many tokens v remembers.
func cachedTokens(v *Verifier) int {
	if v.tokens == nil {
		return 0
	}
	v.tokens.entries.CleanUp()
	return v.tokens.entries.EstimatedSize()
}

// A token reused is answered from the cache with the same Requester, and
// a caller changing what it got does not change the next answer.
func TestTokenCacheSameRequester(t *testing.T) {
	ec, _ := testKeys(t)
	v := newVerifier(t, fileConfig(t), VerifierOptions{})
	tok := sign(t, jwt.SigningMethodES256, ec, goodClaims(), nil)
	first, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if n := cachedTokens(v); n != 1 {
		t.Fatalf("cached tokens after one verification: %d", n)
	}
	first.Scopes[0] = "system/*.rs"
	second, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if second.ClientID != "client-7" || second.Country != "DE" || second.Scopes[0] != "system/Patient.rs" || second.TokenID != "tok-1" {
		t.Fatalf("cached requester: %+v", second)
	}
	// Refused tokens are not remembered.
	if _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodES256, rogueEC, goodClaims(), nil)); err == nil {
		t.Fatal("rogue key accepted")
	}
	if n := cachedTokens(v); n != 1 {
		t.Fatalf("cached tokens after a refusal: %d", n)
	}
	off := newVerifier(t, fileConfig(t), VerifierOptions{TokenCacheEntries: -1})
	if _, err := off.Verify(context.Background(), tok); err != nil || cachedTokens(off) != 0 {
		t.Fatalf("cache off: %v, %d cached", err, cachedTokens(off))
	}
}

// A cached token stops at its exp like any other, and a clock set back
// verifies it again.
func TestTokenCacheExpiry(t *testing.T) {
	ec, _ := testKeys(t)
	var mu sync.Mutex
	now := testNow
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	set := func(t time.Time) { mu.Lock(); now = t; mu.Unlock() }
	v := newVerifier(t, fileConfig(t), VerifierOptions{Now: clock})
	tok := sign(t, jwt.SigningMethodES256, ec, goodClaims(), nil) // exp testNow+4m, skew 30s
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	set(testNow.Add(4*time.Minute + 31*time.Second))
	if _, err := v.Verify(context.Background(), tok); reasonOf(err) != ReasonExpired {
		t.Fatalf("expired cached token: %v", err)
	}
	// Verified at testNow-2m (nbf and iat are testNow-1m, skew 30s): too
	// early, though it was verified later.
	set(testNow.Add(-2 * time.Minute))
	if _, err := v.Verify(context.Background(), tok); reasonOf(err) != ReasonNotYetValid {
		t.Fatalf("token before its iat: %v", err)
	}
}

// A key rotated out of the key set stops its cached tokens on the next
// request.
func TestTokenCacheKeyRemoved(t *testing.T) {
	ec, _ := testKeys(t)
	srv := newJWKSServer(t, jwksJSON(t, published(ec)))
	v := newVerifier(t, urlConfig(srv.URL), VerifierOptions{
		RefreshInterval:           20 * time.Millisecond,
		UnknownKeyRefreshInterval: time.Hour,
	})
	ctx := context.Background()
	tok := sign(t, jwt.SigningMethodES256, ec, goodClaims(), nil)
	for range 2 {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	// The same kid with another key is not the key that verified it.
	srv.serve(http.StatusOK, jwksJSON(t, published(signingKey{ec.kid, mustEC()})))
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := v.Verify(ctx, tok)
		if reasonOf(err) == ReasonSignature {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("token of a replaced key still accepted after 30s: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The cache is bounded.
func TestTokenCacheBounded(t *testing.T) {
	ec, _ := testKeys(t)
	v := newVerifier(t, fileConfig(t), VerifierOptions{TokenCacheEntries: 3})
	for _, jti := range []string{"a", "b", "c", "d", "e", "f"} {
		if _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodES256, ec, with(goodClaims(), map[string]any{"jti": jti}), nil)); err != nil {
			t.Fatal(err)
		}
	}
	if n := cachedTokens(v); n > 3 {
		t.Fatalf("cached tokens %d, bound 3", n)
	}
}
