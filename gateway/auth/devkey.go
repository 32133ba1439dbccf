package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// maxKeyFileBytes bounds what is read from a key or key-set file.
const maxKeyFileBytes = 1 << 20

// LoadOrCreateDevKey returns the development signing key (ECDSA P-256,
// for ES256) stored as a PKCS#8 PEM file at path, creating it when the
// file does not exist: missing parent directories with mode 0700 (an
// existing directory is left as it is), the file with mode 0600.
//
// Creation is atomic and safe between processes: the key is written and
// synced to a temporary file in the same directory, then hard-linked to
// path, which fails if path appeared meanwhile. The loser of a race
// discards its key and loads the winner's, so every caller ends up with
// the same key and no reader ever sees a half-written file. The file
// system must support hard links.
//
// An existing file must hold a P-256 key ("PRIVATE KEY" or "EC PRIVATE
// KEY" PEM) and, outside Windows, must not be readable by group or others.
func LoadOrCreateDevKey(path string) (*ecdsa.PrivateKey, error) {
	if path == "" {
		return nil, errors.New("development key: no file path")
	}
	key, err := loadDevKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("development key: %w", err)
	}
	fresh, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("development key: generate: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(fresh)
	if err != nil {
		return nil, fmt.Errorf("development key: encode: %w", err)
	}
	if err := publishExclusive(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("development key: %w", err)
		}
		// Another process created it first; theirs is the key.
	}
	return loadDevKey(path)
}

// publishExclusive makes data appear at path in one step, or not at all
// if path exists (the error then matches fs.ErrExist).
func publishExclusive(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".devkey-*.tmp")
	if err != nil {
		return err
	}
	name := tmp.Name()
	defer os.Remove(name)
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Link(name, path)
}

func loadDevKey(path string) (*ecdsa.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("development key: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("development key: %w", err)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("development key %s: mode %v lets others read it; chmod 600 it or delete it to get a new one", path, st.Mode().Perm())
	}
	if st.Size() > maxKeyFileBytes {
		return nil, fmt.Errorf("development key %s: file too large", path)
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && st.Size() > 0 {
		return nil, fmt.Errorf("development key %s: %w", path, err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("development key %s: no PEM block", path)
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("development key %s: PEM block is %q, want PRIVATE KEY", path, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("development key %s: %w", path, err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("development key %s: not an ECDSA P-256 key", path)
	}
	return ec, nil
}

// thumbprintP256 is the RFC 7638 JWK thumbprint of a P-256 public key,
// used as its "kid": derived from the key alone, so Mint and Verify agree
// on it without sharing anything but the key file.
func thumbprintP256(pub *ecdsa.PublicKey) (string, error) {
	raw, err := pub.Bytes() // 0x04 || X || Y, each 32 bytes
	if err != nil {
		return "", fmt.Errorf("development key: %w", err)
	}
	if len(raw) != 65 {
		return "", errors.New("development key: not a P-256 point")
	}
	enc := base64.RawURLEncoding
	// Members in lexicographic order, no whitespace (RFC 7638 section 3.2).
	canon := `{"crv":"P-256","kty":"EC","x":"` + enc.EncodeToString(raw[1:33]) +
		`","y":"` + enc.EncodeToString(raw[33:]) + `"}`
	sum := sha256.Sum256([]byte(canon))
	return enc.EncodeToString(sum[:]), nil
}
