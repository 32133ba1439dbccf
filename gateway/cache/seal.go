package cache

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
)

// Value layout, version 1:
//
//	[0]      format version (1)
//	[1]      n = length of the key id
//	[2:2+n]  key id
//	[..+12]  GCM nonce (random)
//	[...]    AES-256-GCM(flag || payload), additional data = the storage key
//
// The storage key as additional data binds a value to its name: a value
// copied under another name does not open. The flag tells a value from a
// negative marker, inside the ciphertext so the store cannot tell either.
const (
	formatV1 = 1
	nonceLen = 12
	gcmTag   = 16

	flagValue  byte = 0
	flagAbsent byte = 1
)

// errUnreadable marks a stored value that cannot be opened: corrupt,
// truncated, sealed with an unknown key or under another name. Callers
// treat it as a miss and delete the entry.
var errUnreadable = errors.New("unreadable cache value")

// sealer turns Keys into names and sealed values.
type sealer struct {
	prefix string // "<namespace>:v1:"
	macs   sync.Pool
	write  ValueKey
	aead   map[string]cipher.AEAD
}

func newSealer(namespace string, k Keys) (*sealer, error) {
	if err := k.Validate(); err != nil {
		return nil, err
	}
	s := &sealer{prefix: namespace + ":v1:", write: k.Values[0], aead: make(map[string]cipher.AEAD, len(k.Values))}
	hmacKey := append([]byte(nil), k.HMAC...)
	s.macs.New = func() any { return &macState{h: hmac.New(sha256.New, hmacKey), buf: make([]byte, 0, 256)} }
	for _, v := range k.Values {
		block, err := aes.NewCipher(v.Key)
		if err != nil {
			return nil, fmt.Errorf("%w: values %q: %v", ErrBadKeys, v.ID, err)
		}
		gcm, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("%w: values %q: %v", ErrBadKeys, v.ID, err)
		}
		s.aead[v.ID] = gcm
	}
	return s, nil
}

// macState is a pooled HMAC with a scratch buffer: hashing a key costs no
// allocation.
type macState struct {
	h   hash.Hash
	buf []byte
}

// mac returns hex(HMAC(domain || len-prefixed parts)). The length prefixes
// keep ["ab","c"] and ["a","bc"] apart; the domain byte keeps a tag from
// ever naming the same thing as a key.
func (s *sealer) mac(domain byte, parts []string) [2 * sha256.Size]byte {
	st := s.macs.Get().(*macState)
	b := append(st.buf[:0], domain)
	for _, p := range parts {
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	st.h.Reset()
	st.h.Write(b)
	sum := st.h.Sum(b[:0])
	var out [2 * sha256.Size]byte
	hex.Encode(out[:], sum)
	if cap(b) <= 64<<10 { // do not pin a huge buffer in the pool
		st.buf = b
	}
	s.macs.Put(st)
	return out
}

// name returns the storage key of k, or false when k's clear components
// could not be stored safely (see validName).
func (s *sealer) name(k Key) (string, bool) {
	if !validName(string(k.Kind), false) || !validName(k.Source, false) || !validVersion(k.Version) {
		return "", false
	}
	sum := s.mac('k', k.Parts)
	var b strings.Builder
	b.Grow(len(s.prefix) + len(k.Kind) + len(k.Source) + len(k.Version) + 3 + len(sum))
	b.WriteString(s.prefix)
	b.WriteString(string(k.Kind))
	b.WriteByte(':')
	b.WriteString(k.Source)
	b.WriteByte(':')
	b.WriteString(k.Version)
	b.WriteByte(':')
	b.Write(sum[:])
	return b.String(), true
}

// sourcePrefix is what every storage key of one kind and source starts with.
func (s *sealer) sourcePrefix(kind Kind, source string) string {
	return s.prefix + string(kind) + ":" + source + ":"
}

// tagName returns the storage key of a tag's index.
func (s *sealer) tagName(tag string) string {
	sum := s.mac('t', []string{tag})
	return s.prefix + "tag:" + string(sum[:])
}

func (s *sealer) tagNames(tags []string) []string {
	if len(tags) == 0 {
		return nil
	}
	out := make([]string, len(tags))
	for i, t := range tags {
		out[i] = s.tagName(t)
	}
	return out
}

// seal encrypts flag||payload for the storage key name with the newest key.
func (s *sealer) seal(name string, flag byte, payload []byte) []byte {
	id := s.write.ID
	hdr := 2 + len(id) + nonceLen
	out := make([]byte, hdr, hdr+1+len(payload)+gcmTag)
	out[0] = formatV1
	out[1] = byte(len(id))
	copy(out[2:], id)
	nonce := out[2+len(id) : hdr]
	_, _ = rand.Read(nonce)
	out = append(out, flag)
	out = append(out, payload...)
	// Sealing in place: the plaintext sits exactly where the ciphertext
	// goes, which cipher.AEAD allows.
	return s.aead[id].Seal(out[:hdr], nonce, out[hdr:], []byte(name))
}

// open decrypts a sealed value stored under name. Every failure wraps
// errUnreadable and says why without quoting the value.
func (s *sealer) open(name string, v []byte) (flag byte, payload []byte, err error) {
	if len(v) < 2 || v[0] != formatV1 {
		return 0, nil, fmt.Errorf("%w: unknown format", errUnreadable)
	}
	n := int(v[1])
	hdr := 2 + n + nonceLen
	if len(v) < hdr+1+gcmTag {
		return 0, nil, fmt.Errorf("%w: truncated", errUnreadable)
	}
	aead, ok := s.aead[string(v[2:2+n])]
	if !ok {
		return 0, nil, fmt.Errorf("%w: unknown key id", errUnreadable)
	}
	pt, err := aead.Open(nil, v[2+n:hdr], v[hdr:], []byte(name))
	if err != nil {
		return 0, nil, fmt.Errorf("%w: authentication failed", errUnreadable)
	}
	if pt[0] != flagValue && pt[0] != flagAbsent {
		return 0, nil, fmt.Errorf("%w: unknown flag", errUnreadable)
	}
	return pt[0], pt[1:], nil
}

// validName accepts the clear components of a key: kind and source must be
// 1 to 64 characters of [A-Za-z0-9._-], so they can neither break the
// ':'-separated layout nor act as SCAN glob characters.
func validName(s string, emptyOK bool) bool {
	if s == "" {
		return emptyOK
	}
	if len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validVersion is validName that also takes '+' and '@' (semver build
// metadata, profile@version) and the empty version.
func validVersion(s string) bool {
	if len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '+' || c == '@' {
			continue
		}
		if !validName(s[i:i+1], false) {
			return false
		}
	}
	return true
}
