package auth

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// devKeyHelperEnv makes the test binary act as a separate process that
// loads or creates the development key at the path the variable holds.
const devKeyHelperEnv = "MHG_AUTH_TEST_DEVKEY_PATH"

func TestMain(m *testing.M) {
	if path := os.Getenv(devKeyHelperEnv); path != "" {
		key, err := LoadOrCreateDevKey(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		kid, err := thumbprintP256(&key.PublicKey)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Println(kid)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestLoadOrCreateDevKeyCreatesOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", ".mhg")
	path := filepath.Join(dir, "dev-signing-key.pem")
	first, err := LoadOrCreateDevKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		for p, want := range map[string]os.FileMode{path: 0o600, dir: 0o700} {
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if got := st.Mode().Perm(); got != want {
				t.Errorf("%s mode = %v, want %v", p, got, want)
			}
		}
	}
	again, err := LoadOrCreateDevKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Equal(again) {
		t.Error("second call returned a different key")
	}
	b, _ := os.ReadFile(path)
	if block, _ := pem.Decode(b); block == nil || block.Type != "PRIVATE KEY" {
		t.Errorf("file is not a PKCS#8 PEM key")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the key (no temporary files left)", len(entries))
	}
}

func TestLoadOrCreateDevKeyConcurrentGoroutines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k", "dev.pem")
	const n = 16
	keys := make([]*ecdsa.PrivateKey, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			keys[i], errs[i] = LoadOrCreateDevKey(path)
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if !keys[i].Equal(keys[0]) {
			t.Fatalf("caller %d got a different key from caller 0", i)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want 1", len(entries))
	}
}

func TestLoadOrCreateDevKeyConcurrentProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	path := filepath.Join(t.TempDir(), "dev.pem")
	const n = 4
	cmds := make([]*exec.Cmd, n)
	outs := make([]strings.Builder, n)
	for i := range n {
		cmds[i] = exec.Command(exe, "-test.run=^$")
		cmds[i].Env = append(os.Environ(), devKeyHelperEnv+"="+path)
		cmds[i].Stdout = &outs[i]
		cmds[i].Stderr = os.Stderr
	}
	for i := range n { // start all before waiting on any, so they race
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		if err := cmds[i].Wait(); err != nil {
			t.Fatalf("process %d: %v", i, err)
		}
	}
	key, err := LoadOrCreateDevKey(path)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := thumbprintP256(&key.PublicKey)
	for i := range n {
		if got := strings.TrimSpace(outs[i].String()); got != want {
			t.Errorf("process %d saw key %q, the file holds %q", i, got, want)
		}
	}
}

func TestLoadDevKeyRefusals(t *testing.T) {
	rsaDER, err := x509.MarshalPKCS8PrivateKey(mustRSA(1024))
	if err != nil {
		t.Fatal(err)
	}
	ec := mustEC()
	sec1, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		content []byte
		mode    os.FileMode
		want    string // "" means it loads
	}{
		{"SEC 1 EC key loads", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), 0o600, ""},
		{"readable by others", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), 0o644, "chmod 600"},
		{"not PEM", []byte("hello"), 0o600, "no PEM block"},
		{"empty", nil, 0o600, "no PEM block"},
		{"RSA key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: rsaDER}), 0o600, "not an ECDSA P-256 key"},
		{"certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}), 0o600, "want PRIVATE KEY"},
		{"garbage DER", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}), 0o600, "development key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if runtime.GOOS == "windows" && tc.mode != 0o600 {
				t.Skip("no Unix permissions")
			}
			path := filepath.Join(t.TempDir(), "dev.pem")
			if err := os.WriteFile(path, tc.content, tc.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil { // umask may have narrowed it
				t.Fatal(err)
			}
			key, err := LoadOrCreateDevKey(path)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !key.Equal(ec) {
					t.Error("loaded a different key")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("LoadOrCreateDevKey = %v, want an error mentioning %q", err, tc.want)
			}
			if after, _ := os.ReadFile(path); string(after) != string(tc.content) {
				t.Error("a refused key file was overwritten")
			}
		})
	}
	if _, err := LoadOrCreateDevKey(""); err == nil {
		t.Error("empty path accepted")
	}
}

func TestThumbprintMatchesCanonicalJWK(t *testing.T) {
	// The thumbprint is SHA-256 over the canonical JSON; check it against
	// a value computed independently of thumbprintP256's string building,
	// through jwkset's JSON rendering of the same key.
	k := mustEC()
	j := jwksJSON(t, jwkEntry{kid: "x", key: &k.PublicKey})
	var set struct {
		Keys []struct{ Crv, Kty, X, Y string }
	}
	if err := json.Unmarshal(j, &set); err != nil {
		t.Fatal(err)
	}
	e := set.Keys[0]
	canon := fmt.Sprintf(`{"crv":%q,"kty":%q,"x":%q,"y":%q}`, e.Crv, e.Kty, e.X, e.Y)
	sum := sha256.Sum256([]byte(canon))
	want := base64.RawURLEncoding.EncodeToString(sum[:])
	got, err := thumbprintP256(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("thumbprint = %s, want %s", got, want)
	}
}
