package summary_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/migrant-health/mhg/conformance"
	"github.com/migrant-health/mhg/gateway/summary"
	"github.com/migrant-health/mhg/mappings"
)

var update = flag.Bool("update", false, "rewrite testdata/*/want*.json from the current renderer")

// identifiers is the registry the mapping engine ships, as the gateway
// uses it by default.
func identifiers(t *testing.T) summary.Identifiers {
	t.Helper()
	eng, err := mappings.Load()
	if err != nil {
		t.Fatal(err)
	}
	reg, err := eng.IdentifierRegistry()
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// Each testdata/<case>/in.json is a summary.Input; want.json is the
// document it renders, or want.<lang>.json per narrative language. A change
// to the document shows as a JSON diff here: go test -update, then review.
func TestGolden(t *testing.T) {
	reg := identifiers(t)
	cases, err := filepath.Glob("testdata/*/in.json")
	if err != nil || len(cases) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, inPath := range cases {
		dir := filepath.Dir(inPath)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Parallel()
			b, err := os.ReadFile(inPath)
			if err != nil {
				t.Fatal(err)
			}
			var in summary.Input
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&in); err != nil {
				t.Fatalf("%s: %v", inPath, err)
			}
			wants, _ := filepath.Glob(filepath.Join(dir, "want.*.json"))
			if len(wants) == 0 {
				wants = []string{filepath.Join(dir, "want.json")}
			}
			for _, want := range wants {
				lin := in
				if lang := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(want), "want."), ".json"); lang != "want" && lang != "" && strings.Count(filepath.Base(want), ".") == 2 {
					lin.Language = lang
				}
				got := render(t, reg, lin)
				if issues := conformance.Check(got); conformance.HasErrors(issues) {
					t.Errorf("%s does not conform to the MHP: %v", want, issues)
				}
				compare(t, want, got)
			}
		})
	}
}

// render renders in with a fixed clock and counted ids, so that the
// document is the same on every run.
func render(t *testing.T, reg summary.Identifiers, in summary.Input) []byte {
	t.Helper()
	n := 0
	r := summary.New(summary.Options{
		Identifiers: reg,
		Now:         func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) },
		NewID: func() string {
			n++
			return fmt.Sprintf("00000000-0000-4000-8000-%012d", n)
		},
	})
	b, err := r.Document(in)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func compare(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("%s differs from the rendered document (go test -update, then review the diff):\n%s", path, firstDiff(want, got))
	}
}

// firstDiff shows the first line that differs, with its number.
func firstDiff(want, got []byte) string {
	wl, gl := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return fmt.Sprintf("line %d:\n  want %s\n  got  %s", i+1, w, g)
		}
	}
	return ""
}
