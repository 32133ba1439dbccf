package conformance

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/migrant-health/mhg/conformance/r4"
)

// FuzzCheckJSON feeds arbitrary bytes to the checker: it must never panic,
// must accept only valid R4, and whatever it reports must render as a
// valid OperationOutcome.
func FuzzCheckJSON(f *testing.F) {
	for _, dir := range []string{"testdata/mhp", "testdata/ips"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.json"))
		if err != nil {
			f.Fatal(err)
		}
		for _, p := range files {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte(`{"resourceType":"Patient","meta":{"profile":["` + ProfilePatient + `"]},"_birthDate":{}}`))
	f.Add([]byte(`{"resourceType":"Bundle","type":"document","entry":[{}]}`))
	c, err := NewChecker(Options{Require: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		issues := c.Check(b)
		if _, err := r4.Parse(b); err != nil && !HasErrors(issues) {
			t.Fatalf("invalid R4 passed: %v", err)
		}
		for _, is := range issues {
			if is.Severity == "" || is.Code == "" || is.Message == "" {
				t.Fatalf("incomplete issue %+v", is)
			}
		}
	})
}

// FuzzProfiles skips the R4 parser and hands arbitrary JSON straight to
// the profile walk, so that shapes R4 would reject (a string where an
// array belongs, a number as a url) still cannot make it panic.
func FuzzProfiles(f *testing.F) {
	files, err := filepath.Glob("testdata/mhp/*.json")
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"resourceType":"Bundle","meta":{"profile":["` + ProfileBundle + `"]},"entry":"x"}`))
	f.Add([]byte(`{"resourceType":"Patient","meta":{"profile":["` + ProfilePatient + `"]},"extension":[{"url":"` + ExtArrival + `","extension":5}],"identifier":{"system":1}}`))
	c, err := NewChecker(Options{Require: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		issues := c.checkTree(b)
		for _, is := range issues {
			if is.Severity == "" || is.Code == "" || is.Message == "" {
				t.Fatalf("incomplete issue %+v", is)
			}
		}
	})
}
