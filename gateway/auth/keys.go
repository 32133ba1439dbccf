package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"

	"github.com/MicahParks/jwkset"
)

// minRSABits is the smallest RSA modulus accepted for RS256 (RFC 7518
// section 3.3 requires 2048 bits or more).
const minRSABits = 2048

// maxJWKSBytes bounds a JWKS document, from file or network.
const maxJWKSBytes = 1 << 20

// keyFits reports why key cannot verify a token signed with alg, or "" if
// it can. jwk metadata (alg, use) is checked by the caller.
func keyFits(alg string, key any) string {
	switch alg {
	case "ES256":
		k, ok := key.(*ecdsa.PublicKey)
		if !ok {
			return "ES256 needs an EC key"
		}
		if k.Curve != elliptic.P256() {
			return "ES256 needs a P-256 key"
		}
	case "RS256":
		k, ok := key.(*rsa.PublicKey)
		if !ok {
			return "RS256 needs an RSA key"
		}
		if k.N.BitLen() < minRSABits {
			return "RS256 key is shorter than 2048 bits"
		}
	default:
		return "algorithm not accepted"
	}
	return ""
}

// jwkUsable reports why a key-set entry cannot be used to verify
// signatures at all, or "" if it may.
func jwkUsable(m jwkset.JWKMarshal) string {
	if m.USE != "" && m.USE != jwkset.UseSig {
		return "use is not sig"
	}
	switch m.ALG {
	case "", jwkset.AlgES256, jwkset.AlgRS256:
	default:
		return "alg is neither RS256 nor ES256"
	}
	return ""
}

// publicOf strips private halves that a key set may carry.
func publicOf(key any) any {
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		return &k.PublicKey
	case *rsa.PrivateKey:
		return &k.PublicKey
	}
	return key
}

// readJWKSFile loads the usable signing keys of a JWKS file into store.
// Entries for other uses or algorithms are skipped; malformed entries,
// entries without kid and duplicate kids are errors, as is a file with no
// usable key.
func readJWKSFile(path string, store jwkset.Storage, seen map[string]bool) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("jwks file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxJWKSBytes+1))
	if err != nil {
		return fmt.Errorf("jwks file %s: %w", path, err)
	}
	if len(b) > maxJWKSBytes {
		return fmt.Errorf("jwks file %s: larger than %d bytes", path, maxJWKSBytes)
	}
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(b, &set); err != nil {
		return fmt.Errorf("jwks file %s: %w", path, err)
	}
	usable := 0
	for i, m := range set.Keys {
		if jwkUsable(m) != "" {
			continue
		}
		if m.KID == "" {
			return fmt.Errorf("jwks file %s: key %d has no kid; tokens name their key by kid", path, i)
		}
		if seen[m.KID] {
			return fmt.Errorf("jwks file %s: key %d: kid %q appears twice", path, i, m.KID)
		}
		// Private: false drops private parts a careless export may carry.
		jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if err != nil {
			return fmt.Errorf("jwks file %s: key %d (kid %q): %w", path, i, m.KID, err)
		}
		if keyFits("ES256", jwk.Key()) != "" && keyFits("RS256", jwk.Key()) != "" {
			continue // e.g. P-384 or Ed25519: valid JWK, not ours to use
		}
		if err := store.KeyWrite(context.Background(), jwk); err != nil {
			return fmt.Errorf("jwks file %s: %w", path, err)
		}
		seen[m.KID] = true
		usable++
	}
	if usable == 0 {
		return fmt.Errorf("jwks file %s: no RS256 or ES256 signing key (RSA >= 2048 bits or EC P-256) with a kid", path)
	}
	return nil
}

// addDevKey puts the development key's public half in store under its
// thumbprint kid and returns that kid.
func addDevKey(path string, store jwkset.Storage, seen map[string]bool) (string, error) {
	priv, err := LoadOrCreateDevKey(path)
	if err != nil {
		return "", err
	}
	kid, err := thumbprintP256(&priv.PublicKey)
	if err != nil {
		return "", err
	}
	if seen[kid] {
		return "", fmt.Errorf("development key: kid %q is also in the JWKS file", kid)
	}
	jwk, err := jwkset.NewJWKFromKey(&priv.PublicKey, jwkset.JWKOptions{
		Metadata: jwkset.JWKMetadataOptions{ALG: jwkset.AlgES256, KID: kid, USE: jwkset.UseSig},
	})
	if err != nil {
		return "", fmt.Errorf("development key: %w", err)
	}
	if err := store.KeyWrite(context.Background(), jwk); err != nil {
		return "", fmt.Errorf("development key: %w", err)
	}
	seen[kid] = true
	return kid, nil
}

// checkJWKSURL refuses URLs that would let a network attacker hand the
// gateway their own keys: plain http is only allowed to a loopback host
// unless insecure is set.
func checkJWKSURL(raw string, insecure bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return errors.New("JWKS URL: want an absolute https URL")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if insecure {
			return nil
		}
		host := u.Hostname()
		if host == "localhost" {
			return nil
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			return nil
		}
		return errors.New("JWKS URL: plain http is only allowed to a loopback host; use https")
	default:
		return errors.New("JWKS URL: want an absolute https URL")
	}
}

// limitedTransport caps JWKS response bodies: jwkset decodes whatever the
// server sends, and a key set has no business being megabytes long.
type limitedTransport struct {
	base  http.RoundTripper
	limit int64
}

var _ http.RoundTripper = limitedTransport{}

func (t limitedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &cappedBody{r: io.LimitReader(resp.Body, t.limit+1), c: resp.Body, left: t.limit}
	return resp, nil
}

// cappedBody fails the read once more than left bytes have come, instead
// of silently truncating into a JSON error that would hide the cause.
type cappedBody struct {
	r    io.Reader
	c    io.Closer
	left int64
}

var errJWKSTooLarge = fmt.Errorf("jwks response larger than %d bytes", maxJWKSBytes)

func (b *cappedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return 0, errJWKSTooLarge
	}
	return n, err
}

func (b *cappedBody) Close() error { return b.c.Close() }
