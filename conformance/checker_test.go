package conformance

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/migrant-health/mhg/conformance/r4"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newChecker(t testing.TB, opts Options) *Checker {
	t.Helper()
	c, err := NewChecker(opts)
	if err != nil {
		t.Fatalf("NewChecker: %v", err)
	}
	return c
}

// Every hand-made MHP example is valid R4 and conforms to the profile it
// claims, with a missing profile made an error.
func TestGoodResourcesPass(t *testing.T) {
	files, err := filepath.Glob("testdata/mhp/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no MHP examples: %v", err)
	}
	c := newChecker(t, Options{Require: true})
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r4.Parse(b); err != nil {
				t.Fatalf("not valid R4: %v", err)
			}
			for _, i := range c.Check(b) {
				t.Errorf("unexpected issue: %s", i)
			}
		})
	}
}
