package cache

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLoadKeys(t *testing.T) {
	cases := []struct {
		file    string
		wantErr string // substring; "" means the file is good
		wantIDs []string
	}{
		{file: "rotated.good.json", wantIDs: []string{"2026-11", "2026-05"}},
		{file: "single.good.json", wantIDs: []string{"k1"}},
		{file: "truncated.bad.json", wantErr: "not valid JSON"},
		{file: "wrong-shape.bad.json", wantErr: "want {"},
		{file: "short-hmac.bad.json", wantErr: "hmac: want 32 bytes, got 16"},
		{file: "no-values.bad.json", wantErr: "values: want at least one key"},
		{file: "repeated-id.bad.json", wantErr: `values[1].id: "k1" repeats`},
		{file: "bad-id.bad.json", wantErr: "values[0].id: want 1-64 characters"},
		{file: "not-base64.bad.json", wantErr: "values[0].key: not standard base64"},
		{file: "short-value.bad.json", wantErr: "values[0].key: want 32 bytes, got 16"},
	}
	secret := regexp.MustCompile(`[A-Za-z0-9+/]{20,}={0,2}`)
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("testdata", "keys", tc.file)
			k, err := LoadKeys(path)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("LoadKeys: %v", err)
				}
				var ids []string
				for _, v := range k.Values {
					ids = append(ids, v.ID)
				}
				if diff := cmp.Diff(tc.wantIDs, ids); diff != "" {
					t.Errorf("ids (-want +got):\n%s", diff)
				}
				return
			}
			if !errors.Is(err, ErrBadKeys) {
				t.Fatalf("err = %v, want ErrBadKeys", err)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %q, want it to say %q", err, tc.wantErr)
			}
			raw, _ := os.ReadFile(path)
			for _, s := range secret.FindAllString(string(raw), -1) {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error quotes key material %q", s)
				}
			}
		})
	}
}

func TestLoadKeysMissingFile(t *testing.T) {
	_, err := LoadKeys(filepath.Join(t.TempDir(), "none.json"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want fs.ErrNotExist", err)
	}
}

func TestKeysEncodeRotateRoundTrip(t *testing.T) {
	k, err := GenerateKeys("k1")
	if err != nil {
		t.Fatal(err)
	}
	k, err = k.Rotate("k2")
	if err != nil {
		t.Fatal(err)
	}
	b, err := k.Encode()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "keys.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := LoadKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(k, got); diff != "" {
		t.Fatalf("round trip (-want +got):\n%s", diff)
	}
	if got.Values[0].ID != "k2" {
		t.Fatalf("newest key = %q, want k2 first", got.Values[0].ID)
	}
	if _, err := k.Rotate("k1"); !errors.Is(err, ErrBadKeys) {
		t.Fatalf("rotating to an id in use: err = %v", err)
	}
}

func TestEphemeralKeysDiffer(t *testing.T) {
	a, b := EphemeralKeys(), EphemeralKeys()
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	if string(a.HMAC) == string(b.HMAC) || string(a.Values[0].Key) == string(b.Values[0].Key) {
		t.Fatal("two ephemeral key sets are equal")
	}
}

func TestNames(t *testing.T) {
	s, err := newSealer("mhg", testKeys(t, "k1"))
	if err != nil {
		t.Fatal(err)
	}
	layout := regexp.MustCompile(`^mhg:v1:res:de-sample:de-basis@1\.2:[0-9a-f]{64}$`)
	k := Key{Kind: KindResource, Source: "de-sample", Version: "de-basis@1.2", Parts: []string{"Patient", "123"}}
	name, ok := s.name(k)
	if !ok || !layout.MatchString(name) {
		t.Fatalf("name = %q, %v; want the documented layout", name, ok)
	}
	if !strings.HasPrefix(name, s.sourcePrefix(KindResource, "de-sample")) {
		t.Fatalf("name %q is outside its source prefix", name)
	}
	distinct := []Key{
		{Kind: KindResource, Source: "de", Parts: []string{"ab", "c"}},
		{Kind: KindResource, Source: "de", Parts: []string{"a", "bc"}},
		{Kind: KindResource, Source: "de", Parts: []string{"abc"}},
		{Kind: KindResource, Source: "de", Parts: nil},
		{Kind: KindResource, Source: "de", Parts: []string{""}},
	}
	seen := map[string]int{}
	for i, k := range distinct {
		n, _ := s.name(k)
		if j, dup := seen[n]; dup {
			t.Errorf("keys %d and %d share the name %q", j, i, n)
		}
		seen[n] = i
	}
	if s.tagName("abc") == s.tagName("abd") || strings.Contains(s.tagName("patient-1"), "patient") {
		t.Error("tag names collide or hold the tag in clear")
	}

	bad := []struct {
		name string
		key  Key
	}{
		{"empty kind", Key{Source: "de"}},
		{"empty source", Key{Kind: KindResource}},
		{"colon in source", Key{Kind: KindResource, Source: "de:x"}},
		{"glob in source", Key{Kind: KindResource, Source: "de*"}},
		{"space in version", Key{Kind: KindResource, Source: "de", Version: "1 2"}},
		{"long source", Key{Kind: KindResource, Source: strings.Repeat("a", 65)}},
	}
	for _, tc := range bad {
		if n, ok := s.name(tc.key); ok {
			t.Errorf("%s: name %q accepted", tc.name, n)
		}
	}
}

func TestSealOpen(t *testing.T) {
	s, err := newSealer("mhg", testKeys(t, "k1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, payload := range [][]byte{nil, []byte("x"), []byte(strings.Repeat("Müller 1980-01-02 ", 1000))} {
		v := s.seal("mhg:v1:res:de::abc", flagValue, payload)
		flag, got, err := s.open("mhg:v1:res:de::abc", v)
		if err != nil || flag != flagValue || string(got) != string(payload) {
			t.Fatalf("open(seal(%d bytes)) = %d, %d bytes, %v", len(payload), flag, len(got), err)
		}
		// Short payloads turn up in random ciphertext by chance.
		if len(payload) >= 16 && strings.Contains(string(v), string(payload[:16])) {
			t.Fatal("sealed value holds the payload in clear")
		}
		if _, _, err := s.open("mhg:v1:res:de::abd", v); !errors.Is(err, errUnreadable) {
			t.Fatalf("opened under another name: %v", err)
		}
	}
	a, b := s.seal("n", flagValue, []byte("same")), s.seal("n", flagValue, []byte("same"))
	if string(a) == string(b) {
		t.Fatal("two seals of one value are equal: nonces repeat")
	}
}

func FuzzParseKeys(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "keys", "*.json"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseKeys(b)
		if err != nil {
			if !errors.Is(err, ErrBadKeys) {
				t.Fatalf("error does not wrap ErrBadKeys: %v", err)
			}
			return
		}
		enc, err := k.Encode()
		if err != nil {
			t.Fatalf("parsed keys do not encode: %v", err)
		}
		again, err := ParseKeys(enc)
		if err != nil {
			t.Fatalf("encoded keys do not parse: %v", err)
		}
		if diff := cmp.Diff(k, again); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

// FuzzOpen feeds arbitrary bytes, as a compromised or corrupted Redis
// could, to the value decoder: it must refuse them without panicking.
func FuzzOpen(f *testing.F) {
	k, err := ParseKeys(mustRead(f, "testdata/keys/rotated.good.json"))
	if err != nil {
		f.Fatal(err)
	}
	s, err := newSealer("mhg", k)
	if err != nil {
		f.Fatal(err)
	}
	const name = "mhg:v1:res:de:1:00"
	good := s.seal(name, flagValue, []byte(`{"resourceType":"Patient"}`))
	f.Add(good)
	f.Add(s.seal(name, flagAbsent, nil))
	f.Add(good[:len(good)-1])
	f.Add([]byte{formatV1, 255})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, v []byte) {
		flag, payload, err := s.open(name, v)
		if err != nil {
			if !errors.Is(err, errUnreadable) {
				t.Fatalf("error does not wrap errUnreadable: %v", err)
			}
			return
		}
		// Only a genuine seal opens; re-sealing what opened must open too.
		if flag != flagValue && flag != flagAbsent {
			t.Fatalf("opened with flag %d", flag)
		}
		if _, got, err := s.open(name, s.seal(name, flag, payload)); err != nil || string(got) != string(payload) {
			t.Fatalf("re-seal does not round trip: %v", err)
		}
	})
}

func mustRead(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
