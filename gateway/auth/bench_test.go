package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// BenchmarkVerify measures Verify (in full, and from the token cache) next to the bare signature check of the
// same token (SHA-256 of the signing input, then ecdsa.Verify or
// rsa.VerifyPKCS1v15 with the key at hand and the signature already
// decoded), which no verifier can go below.
//
// The "paired" sub-benchmark runs one baseline check and one Verify per
// iteration and times each, so both see the same machine load; it
// reports their ns/op and "x-baseline", Verify's cost as a multiple of
// the baseline's. Its own ns/op is the sum of the two.
func BenchmarkVerify(b *testing.B) {
	ec, rs := testKeys(b)
	// Verify in full every time; "Verify-cached" is a client reusing its
	// token (tokenCache).
	v := newVerifier(b, fileConfig(b), VerifierOptions{TokenCacheEntries: -1})
	cached := newVerifier(b, fileConfig(b), VerifierOptions{})
	ctx := context.Background()

	for _, alg := range []struct {
		name   string
		method jwt.SigningMethod
		key    signingKey
		bare   func(digest, sig []byte) bool
	}{
		{"ES256", jwt.SigningMethodES256, ec, func(digest, sig []byte) bool {
			r := new(big.Int).SetBytes(sig[:32])
			s := new(big.Int).SetBytes(sig[32:])
			return ecdsa.Verify(ec.public().(*ecdsa.PublicKey), digest, r, s)
		}},
		{"RS256", jwt.SigningMethodRS256, rs, func(digest, sig []byte) bool {
			return rsa.VerifyPKCS1v15(rs.public().(*rsa.PublicKey), crypto.SHA256, digest, sig) == nil
		}},
	} {
		tok := sign(b, alg.method, alg.key, goodClaims(), nil)
		h, p, s := segments(b, tok)
		input := []byte(h + "." + p)
		sig, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			b.Fatal(err)
		}
		bare := func() {
			digest := sha256.Sum256(input)
			if !alg.bare(digest[:], sig) {
				b.Fatal("bare verification failed")
			}
		}
		verify := func() {
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}

		b.Run(alg.name+"/baseline", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bare()
			}
		})
		b.Run(alg.name+"/Verify", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				verify()
			}
		})
		b.Run(alg.name+"/Verify-cached", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := cached.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(alg.name+"/paired", func(b *testing.B) {
			var inBare, inVerify time.Duration
			for b.Loop() {
				t0 := time.Now()
				bare()
				t1 := time.Now()
				verify()
				inVerify += time.Since(t1)
				inBare += t1.Sub(t0)
			}
			b.ReportMetric(float64(inBare.Nanoseconds())/float64(b.N), "baseline-ns/op")
			b.ReportMetric(float64(inVerify.Nanoseconds())/float64(b.N), "verify-ns/op")
			b.ReportMetric(float64(inVerify)/float64(inBare), "x-baseline")
		})
	}
}
