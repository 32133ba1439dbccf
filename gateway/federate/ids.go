package federate

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// ErrBadID is wrapped by every error about a gateway id that cannot be
// decoded: malformed, forged, or minted under another key.
var ErrBadID = errors.New("invalid gateway id")

// ErrIDTooLong is returned when a source id is too long to leave room in
// a FHIR id (64 characters) for even a digest id (idtable.go).
var ErrIDTooLong = errors.New("upstream id too long for a gateway id")

// idAlphabet is base64 with '-' and '.' in place of '+' and '/': exactly the
// 64 characters a FHIR id may hold.
const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-."

var idEncoding = base64.NewEncoding(idAlphabet).WithPadding(base64.NoPadding).Strict()

const (
	tagLen     = 10 // bytes of synthetic IV: 80 bits against forgery
	fhirIDMax  = 64
	formRaw    = 0
	formUUID   = 1
	formUUIDUp = 2
	formPacked = 3
	formDerive = 4
	uuidStrLen = 36
)

// IDCodec turns (source, resource type, upstream id) into an opaque, stable
// gateway id and back. The id is "<source id>.<sealed>", where sealed is a
// deterministic authenticated encryption (an SIV construction: HMAC-SHA256
// tag used as the AES-CTR IV) of the upstream id, so the same upstream
// resource always gets the same id, ids from different types differ, and no
// national identifier or upstream id is readable in it. Without the key an
// id can neither be read nor forged. An upstream id too long to seal into
// 64 characters gets a digest id backed by an id table (idtable.go).
type IDCodec struct {
	macKey    []byte
	digestKey []byte
	block     cipher.Block
	table     *idTable
}

// NewIDCodec derives the codec's keys from secret (at least 32 bytes); its
// id table is in-process.
func NewIDCodec(secret []byte) (*IDCodec, error) {
	return NewIDCodecTable(secret, IDTableOptions{})
}

// NewIDCodecTable is NewIDCodec with the id table of the options: the
// cache's Redis store when there is one, so that every replica resolves
// the long ids any of them minted.
func NewIDCodecTable(secret []byte, opts IDTableOptions) (*IDCodec, error) {
	if len(secret) < 32 {
		return nil, fmt.Errorf("id key: need at least 32 bytes, got %d", len(secret))
	}
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte("mhg gateway id v1 " + label))
		return m.Sum(nil)
	}
	block, err := aes.NewCipher(derive("enc"))
	if err != nil {
		return nil, fmt.Errorf("id key: %w", err)
	}
	table, err := newIDTable(opts)
	if err != nil {
		return nil, err
	}
	return &IDCodec{macKey: derive("mac"), digestKey: derive("digest"), block: block, table: table}, nil
}

// Encode returns the gateway id of an upstream resource.
func (c *IDCodec) Encode(source, resourceType, upstreamID string) (string, error) {
	payload := compactID(upstreamID)
	room := fhirIDMax - len(source) - 1
	if idEncoding.EncodedLen(tagLen+len(payload)) > room {
		return c.encodeLong(source, resourceType, upstreamID, payload)
	}
	return source + "." + idEncoding.EncodeToString(c.seal(source, resourceType, payload)), nil
}

// Decode returns the source id and upstream id behind a gateway id of the
// given resource type.
func (c *IDCodec) Decode(resourceType, id string) (source, upstreamID string, err error) {
	return c.DecodeContext(context.Background(), resourceType, id)
}

// DecodeContext is Decode under ctx, which bounds the id table lookup of
// a digest id.
func (c *IDCodec) DecodeContext(ctx context.Context, resourceType, id string) (source, upstreamID string, err error) {
	if len(id) > fhirIDMax || strings.Trim(id, idAlphabet) != "" {
		return "", "", ErrBadID
	}
	source, enc, ok := strings.Cut(id, ".")
	if !ok || source == "" || enc == "" {
		return "", "", ErrBadID
	}
	sealed, err := idEncoding.DecodeString(enc)
	if err != nil || len(sealed) <= tagLen {
		return "", "", ErrBadID
	}
	if upstream, ok := c.open(source, resourceType, sealed); ok {
		return source, upstream, nil
	}
	if len(sealed) == digestLen {
		return c.decodeLong(ctx, resourceType, id, source, sealed)
	}
	return "", "", ErrBadID
}

func (c *IDCodec) tag(source, resourceType string, payload []byte) []byte {
	m := hmac.New(sha256.New, c.macKey)
	m.Write([]byte(source))
	m.Write([]byte{0})
	m.Write([]byte(resourceType))
	m.Write([]byte{0})
	m.Write(payload)
	return m.Sum(nil)[:tagLen]
}

func (c *IDCodec) stream(tag []byte) cipher.Stream {
	iv := make([]byte, aes.BlockSize)
	copy(iv, tag)
	return cipher.NewCTR(c.block, iv)
}

// derivedKinds are the kinds of output a mapping derives from an upstream
// resource (mappings.DerivedID): a one-byte code each keeps their ids short.
var derivedKinds = []string{1: "migration-context", 2: "provenance"}

// compactID shortens UUIDs (lower- or upper-case) to 16 bytes so that the
// common case leaves room for long source ids.
func compactID(id string) []byte {
	if base, kind, ok := cutDerived(id); ok {
		for code, k := range derivedKinds {
			if k != "" && k == kind {
				return append([]byte{formDerive, byte(code)}, compactID(base)...)
			}
		}
	}
	if len(id) == uuidStrLen && id[8] == '-' && id[13] == '-' && id[18] == '-' && id[23] == '-' {
		hexPart := id[0:8] + id[9:13] + id[14:18] + id[19:23] + id[24:]
		if b, err := hex.DecodeString(hexPart); err == nil {
			switch hexPart {
			case hex.EncodeToString(b):
				return append([]byte{formUUID}, b...)
			case strings.ToUpper(hex.EncodeToString(b)):
				return append([]byte{formUUIDUp}, b...)
			}
		}
	}
	if p, ok := pack6(id); ok && len(p) < len(id)+1 {
		return p
	}
	return append([]byte{formRaw}, id...)
}

// pack6 stores an id made only of FHIR id characters in 6 bits a character.
func pack6(id string) ([]byte, bool) {
	if len(id) == 0 || len(id) > 255 {
		return nil, false
	}
	out := make([]byte, 2, 2+(len(id)*6+7)/8)
	out[0], out[1] = formPacked, byte(len(id))
	var acc uint32
	var bits uint
	for i := 0; i < len(id); i++ {
		v := strings.IndexByte(idAlphabet, id[i])
		if v < 0 {
			return nil, false
		}
		acc = acc<<6 | uint32(v)
		bits += 6
		for bits >= 8 {
			bits -= 8
			out = append(out, byte(acc>>bits))
		}
	}
	if bits > 0 {
		out = append(out, byte(acc<<(8-bits)))
	}
	return out, true
}

func unpack6(p []byte) (string, bool) {
	if len(p) < 2 || p[1] == 0 {
		return "", false
	}
	n := int(p[1])
	data := p[2:]
	if len(data) != (n*6+7)/8 {
		return "", false
	}
	out := make([]byte, 0, n)
	var acc uint32
	var bits uint
	for _, b := range data {
		acc = acc<<8 | uint32(b)
		bits += 8
		for bits >= 6 && len(out) < n {
			bits -= 6
			out = append(out, idAlphabet[(acc>>bits)&63])
		}
	}
	if acc&(1<<bits-1) != 0 {
		return "", false // non-canonical padding
	}
	return string(out), true
}

func expandID(p []byte) (string, bool) {
	if len(p) == 0 {
		return "", false
	}
	switch p[0] {
	case formUUID, formUUIDUp:
		if len(p) != 17 {
			return "", false
		}
		h := hex.EncodeToString(p[1:])
		if p[0] == formUUIDUp {
			h = strings.ToUpper(h)
		}
		return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], true
	case formPacked:
		return unpack6(p)
	case formDerive:
		if len(p) < 3 || int(p[1]) >= len(derivedKinds) || derivedKinds[p[1]] == "" {
			return "", false
		}
		base, ok := expandID(p[2:])
		if !ok {
			return "", false
		}
		return base + "/" + derivedKinds[p[1]], true
	case formRaw:
		if len(p) == 1 {
			return "", false
		}
		return string(p[1:]), true
	}
	return "", false
}

// cutDerived splits "upstream/kind" (mappings.DerivedID) at its last "/".
func cutDerived(id string) (base, kind string, ok bool) {
	i := strings.LastIndexByte(id, '/')
	if i <= 0 || i == len(id)-1 {
		return "", "", false
	}
	return id[:i], id[i+1:], true
}
