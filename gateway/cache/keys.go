package cache

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// ErrBadKeys marks a key file or Keys value that cannot be used; LoadKeys
// and New wrap it. Its messages name fields, never key material.
var ErrBadKeys = errors.New("bad cache keys")

const (
	// hmacKeyLen is the HMAC-SHA256 key size the key file must hold.
	hmacKeyLen = 32
	// valueKeyLen selects AES-256.
	valueKeyLen = 32
	// maxKeyIDLen keeps the value header's one-byte length field honest.
	maxKeyIDLen = 64
)

// Keys is the secret material of a cache: one HMAC key that turns key parts
// and tags into opaque names, and AES-256-GCM keys that seal values.
//
// Every replica sharing a Redis must hold the same Keys, or they neither
// find nor read each other's entries. Changing HMAC empties the cache in
// effect (every name changes); value keys rotate without that (see Values).
type Keys struct {
	// HMAC is the 32-byte HMAC-SHA256 key for cache keys and tags.
	HMAC []byte
	// Values are the AES-256 keys, newest first: Values[0] seals every new
	// value, and any of them opens a value whose header names its ID. To
	// rotate, put a new key first and keep the old ones until their values
	// have expired (the longest TTL).
	Values []ValueKey
}

// ValueKey is one AES-256-GCM key and the id written in front of each value
// it seals.
type ValueKey struct {
	// ID names the key in value headers: 1 to 64 characters from
	// [A-Za-z0-9._-]. It is stored in clear, so it must say nothing but
	// which key this is (a date or a counter).
	ID string
	// Key is 32 random bytes.
	Key []byte
}

// keyFile is the on-disk JSON form of Keys; see README.md.
type keyFile struct {
	HMAC   string         `json:"hmac"`
	Values []keyFileValue `json:"values"`
}

type keyFileValue struct {
	ID  string `json:"id"`
	Key string `json:"key"`
}

// LoadKeys reads a key file (JSON, see README.md): base64 "hmac" of 32
// bytes and a non-empty "values" list of {"id", "key"} with 32-byte base64
// keys, newest first. Errors wrap ErrBadKeys or the read error and never
// quote the file's content.
func LoadKeys(path string) (Keys, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Keys{}, fmt.Errorf("cache key file: %w", err)
	}
	k, err := ParseKeys(b)
	if err != nil {
		return Keys{}, fmt.Errorf("cache key file %s: %w", path, err)
	}
	return k, nil
}

// ParseKeys decodes the key file format LoadKeys reads.
func ParseKeys(b []byte) (Keys, error) {
	var f keyFile
	if err := json.Unmarshal(b, &f); err != nil {
		// The JSON error may quote the input, which is secret: keep only
		// its kind.
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return Keys{}, fmt.Errorf("%w: not valid JSON (offset %d)", ErrBadKeys, syn.Offset)
		}
		return Keys{}, fmt.Errorf("%w: want {\"hmac\": base64, \"values\": [{\"id\", \"key\"}]}", ErrBadKeys)
	}
	var k Keys
	var err error
	if k.HMAC, err = decodeKey(f.HMAC); err != nil {
		return Keys{}, fmt.Errorf("%w: hmac: %v", ErrBadKeys, err)
	}
	for i, v := range f.Values {
		key, err := decodeKey(v.Key)
		if err != nil {
			return Keys{}, fmt.Errorf("%w: values[%d].key: %v", ErrBadKeys, i, err)
		}
		k.Values = append(k.Values, ValueKey{ID: v.ID, Key: key})
	}
	if err := k.Validate(); err != nil {
		return Keys{}, err
	}
	return k, nil
}

func decodeKey(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("missing")
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("not standard base64")
	}
	if len(b) != 32 {
		return nil, fmt.Errorf("want 32 bytes, got %d", len(b))
	}
	return b, nil
}

// Validate reports the first problem that makes k unusable, wrapping
// ErrBadKeys.
func (k Keys) Validate() error {
	if len(k.HMAC) != hmacKeyLen {
		return fmt.Errorf("%w: hmac: want %d bytes, got %d", ErrBadKeys, hmacKeyLen, len(k.HMAC))
	}
	if len(k.Values) == 0 {
		return fmt.Errorf("%w: values: want at least one key", ErrBadKeys)
	}
	seen := make(map[string]bool, len(k.Values))
	for i, v := range k.Values {
		if !validKeyID(v.ID) {
			return fmt.Errorf("%w: values[%d].id: want 1-%d characters of [A-Za-z0-9._-]", ErrBadKeys, i, maxKeyIDLen)
		}
		if seen[v.ID] {
			return fmt.Errorf("%w: values[%d].id: %q repeats", ErrBadKeys, i, v.ID)
		}
		seen[v.ID] = true
		if len(v.Key) != valueKeyLen {
			return fmt.Errorf("%w: values[%d].key: want %d bytes, got %d", ErrBadKeys, i, valueKeyLen, len(v.Key))
		}
	}
	return nil
}

func validKeyID(id string) bool {
	if id == "" || len(id) > maxKeyIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// GenerateKeys returns fresh random Keys with one value key named id.
func GenerateKeys(id string) (Keys, error) {
	k := Keys{HMAC: randomBytes(hmacKeyLen), Values: []ValueKey{{ID: id, Key: randomBytes(valueKeyLen)}}}
	if err := k.Validate(); err != nil {
		return Keys{}, err
	}
	return k, nil
}

// Rotate returns k with a new random value key named id in front, so new
// values are sealed with it while the older keys still open old values.
// The HMAC key stays, so cache keys do not change.
func (k Keys) Rotate(id string) (Keys, error) {
	out := Keys{HMAC: k.HMAC, Values: append([]ValueKey{{ID: id, Key: randomBytes(valueKeyLen)}}, k.Values...)}
	if err := out.Validate(); err != nil {
		return Keys{}, err
	}
	return out, nil
}

// Encode returns the key file form of k, for writing with mode 0600.
func (k Keys) Encode() ([]byte, error) {
	if err := k.Validate(); err != nil {
		return nil, err
	}
	f := keyFile{HMAC: base64.StdEncoding.EncodeToString(k.HMAC)}
	for _, v := range k.Values {
		f.Values = append(f.Values, keyFileValue{ID: v.ID, Key: base64.StdEncoding.EncodeToString(v.Key)})
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode cache keys: %w", err)
	}
	return append(b, '\n'), nil
}

// EphemeralKeys returns random Keys that live as long as the process: fit
// for the in-process cache of one replica, useless for a Redis shared by
// several (each would see only its own entries).
func EphemeralKeys() Keys {
	k, err := GenerateKeys("ephemeral")
	if err != nil {
		// GenerateKeys only fails on a bad id, and this one is good.
		panic(err)
	}
	return k
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	// crypto/rand.Read never returns an error on supported platforms; it
	// crashes the program instead.
	_, _ = rand.Read(b)
	return b
}
