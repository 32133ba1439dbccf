package r4

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every example in testdata/primitive-extensions (R4 specification and IPS
// examples that use primitive extensions, and one file per form the R4
// JSON rules allow) parses, renders, and parses again; the forms keep what
// they say.
func TestPrimitiveExtensionExamples(t *testing.T) {
	want := map[string][]string{
		"form-given-null-placeholder.json":   {`"given":["Mila","Oksana"]`, `"_given":[null,{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/iso21090-EN-qualifier","valueCode":"CL"}]}]`},
		"form-value-null-placeholder.json":   {`"given":[null,"Oksana"]`, `"valueCode":"masked"`},
		"form-spec-json-page.json":           {`"given":["Bob",null,"Jim"]`, `"id":"a3"`, `"valueCode":"unknown"`},
		"form-extension-without-value.json":  {`"birthDate":"1970-03-30"`, `"url":"part"`},
		"form-id-on-primitive.json":          {`"_gender":{"id":"g1"}`, `"_birthDate":{"id":"314159"}`},
		"form-extension-only-primitive.json": {`"_birthDate":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/data-absent-reason","valueCode":"unknown"}],"id":"b1"}`},
		"form-contained-and-coding.json":     {`"given":["Ivan",null]`, `"valueCode":"asked-unknown"`, `"reference":"#rp1"`, `"_display":{"extension"`},
		"patient-example.json":               {`"_birthDate":{"extension"`, `"_family":{"extension"`},
	}
	files, err := filepath.Glob("testdata/primitive-extensions/*.json")
	if err != nil || len(files) < 10 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(b, []byte(`"_`)) {
				t.Fatal("the example uses no primitive extension")
			}
			cr, err := Parse(b)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			out, err := Marshal(cr)
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			if _, err := Parse(out); err != nil {
				t.Fatalf("parse of the rendering: %v\n%s", err, out)
			}
			for _, w := range want[name] {
				if !strings.Contains(string(out), w) {
					t.Errorf("rendering lacks %s:\n%s", w, out)
				}
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"no null is left alone", `{"a": 1 , "given":["x"]}`, `{"a": 1 , "given":["x"]}`},
		{"placeholder in _x", `{"given":["a","b"],"_given":[null,{"id":"1"}]}`, `{"_given":[{},{"id":"1"}],"given":["a","b"]}`},
		{"placeholder in x", `{"given":[null,"b"],"_given":[{"id":"1"},null]}`, `{"_given":[{"id":"1"},{}],"given":[{},"b"]}`},
		{"null in both is dropped", `{"given":["a",null],"_given":[{"id":"1"},null]}`, `{"_given":[{"id":"1"}],"given":["a"]}`},
		{"all null drops both", `{"given":[null],"_given":[null]}`, `{}`},
		{"null member dropped", `{"birthDate":"2000","_birthDate":null}`, `{"birthDate":"2000"}`},
		{"_x alone", `{"_given":[null,{"id":"1"}]}`, `{"_given":[{"id":"1"}]}`},
		{"nested", `{"contained":[{"name":[{"given":["a","b"],"_given":[null,{"id":"1"}]}]}]}`, `{"contained":[{"name":[{"_given":[{},{"id":"1"}],"given":["a","b"]}]}]}`},
		{"lengths differ: left to the codec", `{"given":["a"],"_given":[null,{"id":"1"}]}`, `{"given":["a"],"_given":[null,{"id":"1"}]}`},
		{"big numbers keep their digits", `{"valueDecimal":1.000000000000000000001,"x":null}`, `{"valueDecimal":1.000000000000000000001}`},
		{"not JSON", `{"given":[null`, `{"given":[null`},
		{"null string value is data", `{"text":"null"}`, `{"text":"null"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(Normalize([]byte(tt.in)))
			if got != tt.want {
				t.Errorf("Normalize(%s)\n got %s\nwant %s", tt.in, got, tt.want)
			}
		})
	}
}

// The issue's own case: a source page entry with a null placeholder.
func TestParseGivenNullPlaceholder(t *testing.T) {
	in := `{"resourceType":"Patient","id":"p","name":[{"given":["Mila","Oksana"],"_given":[null,{"extension":[{"url":"http://example.org/x","valueString":"y"}]}]}]}`
	if _, err := Parse([]byte(in)); err != nil {
		t.Fatal(err)
	}
}

// Normalize never panics, is idempotent, returns JSON when given JSON, and
// never makes the codec refuse what it accepted.
func FuzzNormalize(f *testing.F) {
	files, _ := filepath.Glob("testdata/primitive-extensions/form-*.json")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"given":[null],"_given":[null,null]}`))
	f.Add([]byte(`[null,{"_a":[null]}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		once := Normalize(b)
		if json.Valid(b) && !json.Valid(once) {
			t.Fatalf("Normalize made invalid JSON of %q: %q", b, once)
		}
		if twice := Normalize(once); !bytes.Equal(once, twice) && !jsonEqual(once, twice) {
			t.Fatalf("not idempotent: %q then %q", once, twice)
		}
		setup()
		if _, err := unmarshaller.Unmarshal(b); err == nil {
			if _, err := Parse(b); err != nil {
				t.Fatalf("the codec accepted %q but not its normal form: %v", b, err)
			}
		}
	})
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}
