package source

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/migrant-health/mhg/conformance/r4"
)

// smallSeeds are the testdata files small enough to fuzz from (the Synthea
// bundles are half a megabyte each).
func smallSeeds(f *testing.F) map[string][]byte {
	f.Helper()
	out := map[string][]byte{}
	for _, pattern := range []string{"testdata/r4/*.json", "testdata/ips/Bundle-bundle-minimal.json", "testdata/invalid/*.json", "testdata/ndjson/*.ndjson"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, name := range files {
			b, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			out[name] = b
		}
	}
	return out
}

// checkServed holds for whatever a parser accepted: a typed resource with an
// id whose JSON the codec accepts as that resource.
func checkServed(t *testing.T, r Resource, wantType string) {
	t.Helper()
	if !resourceTypePattern.MatchString(r.Type) || r.ID == "" {
		t.Fatalf("accepted a resource without type or id: %q %q", r.Type, r.ID)
	}
	if wantType != "" && r.Type != wantType {
		t.Fatalf("accepted a %s where %s was searched", r.Type, wantType)
	}
	cr, err := r4.Parse(r.JSON)
	if err != nil {
		t.Fatalf("accepted JSON the codec rejects: %v", err)
	}
	if r4.TypeName(cr) != r.Type || r4.ID(cr) != r.ID {
		t.Fatalf("reported %s/%s for a %s/%s", r.Type, r.ID, r4.TypeName(cr), r4.ID(cr))
	}
}

func FuzzBundleParse(f *testing.F) {
	for name, b := range smallSeeds(f) {
		f.Add(b, strings.HasSuffix(name, ".ndjson"))
	}
	f.Add([]byte(`{"resourceType":"Bundle","type":"transaction","entry":[`+
		`{"fullUrl":"urn:uuid:0d7b6a9e-7f4b-4a35-9d0a-5b1f3d6e2c11","resource":{"resourceType":"Patient"}},`+
		`{"fullUrl":"urn:uuid:1d7b6a9e-7f4b-4a35-9d0a-5b1f3d6e2c11","resource":{"resourceType":"Condition","id":"c",`+
		`"subject":{"reference":"urn:uuid:0d7b6a9e-7f4b-4a35-9d0a-5b1f3d6e2c11"}}}]}`), false)
	f.Add([]byte("{\"resourceType\":\"Patient\",\"id\":\"a\"}\n\n{\"resourceType\":\"Patient\",\"id\":\"b\"}"), true)
	f.Fuzz(func(t *testing.T, data []byte, ndjson bool) {
		name := "f.json"
		if ndjson {
			name = "f.ndjson"
		}
		rs, err := parseFile(name, data)
		if err != nil {
			if !errors.Is(err, ErrInvalidResponse) {
				t.Fatalf("error %v does not wrap ErrInvalidResponse", err)
			}
			if !strings.Contains(err.Error(), name) {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		for _, r := range rs {
			checkServed(t, r, "")
		}
	})
}

func FuzzSearchPage(f *testing.F) {
	patient := readTestdataRaw("r4/patient-example.json")
	f.Add([]byte(`{"resourceType":"Bundle","type":"searchset","link":[{"relation":"next","url":"Patient?page=2"}],` +
		`"entry":[{"resource":` + patient + `,"search":{"mode":"match"}},` +
		`{"resource":` + readTestdataRaw("r4/condition-example.json") + `,"search":{"mode":"include"}},` +
		`{"resource":` + readTestdataRaw("r4/operationoutcome-example.json") + `,"search":{"mode":"outcome"}}]}`))
	f.Add([]byte(`{"resourceType":"Bundle","type":"searchset","entry":[{"response":{"status":"200"}}]}`))
	f.Add([]byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"processing"}]}`))
	f.Add([]byte(`{"resourceType":"Bundle","entry":[{"resource":` + readTestdataRaw("invalid/patient-gender-number.json") + `}]}`))
	for _, b := range smallSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, next, bad, err := parseSearchPage(data, "Patient")
		for _, b := range bad {
			var ire *InvalidResourceError
			if !errors.As(b, &ire) || !errors.Is(b, ErrInvalidResponse) {
				t.Fatalf("a dropped entry's error %v is not an InvalidResourceError", b)
			}
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidResponse) && !errors.Is(err, ErrRejected) {
				t.Fatalf("error %v wraps neither ErrInvalidResponse nor ErrRejected", err)
			}
			if rs != nil || next != "" {
				t.Fatal("results returned with an error")
			}
			return
		}
		for _, r := range rs {
			checkServed(t, r, "Patient")
		}
	})
}

func FuzzSearchValue(f *testing.F) {
	for _, s := range []string{"a|b", `a\|b|c`, "x,y", `x\,y`, `\`, `a\`, "|v", "s|", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		parts := r4.SplitEscaped(s, ',')
		if strings.Join(parts, ",") != s {
			t.Fatalf("splitting %q lost characters: %q", s, parts)
		}
		for _, p := range parts {
			_ = r4.Unescape(p)
		}
	})
}
