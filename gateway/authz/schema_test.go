package authz

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/policies"
)

// goPaths lists the JSON paths of a Go type as the schema names them, and
// which of them are always present (no omitempty, not a pointer).
func goPaths(t reflect.Type, prefix string, paths, required map[string]bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice:
		paths[prefix+"[_]"] = true
		goPaths(t.Elem(), prefix+"[_]", paths, required)
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			name, opts, _ := strings.Cut(tag, ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			p := prefix + "." + name
			paths[p] = true
			if !strings.Contains(opts, "omitempty") && f.Type.Kind() != reflect.Pointer {
				required[p] = true
			}
			goPaths(f.Type, p, paths, required)
		}
	}
}

// schemaRequired lists the paths the schema requires.
func schemaRequired(schema any) map[string]bool {
	out := map[string]bool{}
	root := schema.(map[string]any)
	defs := root["definitions"].(map[string]any)
	var walk func(node any, p string)
	walk = func(node any, p string) {
		m, _ := node.(map[string]any)
		if ref, ok := m["$ref"].(string); ok {
			m = defs[strings.TrimPrefix(ref, "#/definitions/")].(map[string]any)
		}
		if items, ok := m["items"]; ok {
			walk(items, p+"[_]")
		}
		req, _ := m["required"].([]any)
		for _, r := range req {
			out[p+"."+r.(string)] = true
		}
		props, _ := m["properties"].(map[string]any)
		for name, sub := range props {
			walk(sub, p+"."+name)
		}
	}
	walk(root, "input")
	return out
}

// The schema lawyers read and the checker enforces is the Go Input, field
// for field: neither can grow a path the other lacks.
func TestSchemaMatchesInputStruct(t *testing.T) {
	t.Parallel()
	paths, required := map[string]bool{}, map[string]bool{}
	goPaths(reflect.TypeFor[Input](), "input", paths, required)
	var schema any
	if err := json.Unmarshal(policies.InputSchema(), &schema); err != nil {
		t.Fatal(err)
	}
	fromSchema := map[string]bool{}
	for _, p := range schemaPaths(schema, "input") {
		fromSchema[p] = true
	}
	if diff := cmp.Diff(sortedKeys(paths), sortedKeys(fromSchema)); diff != "" {
		t.Errorf("Go Input paths (-) vs schema paths (+):\n%s", diff)
	}
	if diff := cmp.Diff(sortedKeys(required), sortedKeys(schemaRequired(schema))); diff != "" {
		t.Errorf("always-present Go fields (-) vs schema required (+):\n%s", diff)
	}
	for p := range fromSchema {
		if w, bad := protectedName(p[strings.LastIndex(p, ".")+1:]); bad {
			t.Errorf("schema path %s names a protected attribute (%s)", p, w)
		}
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Each input document goes through the Go structs and straight into Rego:
// both must give the same decision, so a JSON tag and a Rego path cannot
// drift apart unnoticed.
func TestInputDocumentsThroughGoAndRego(t *testing.T) {
	t.Parallel()
	set, err := loadFS(builtinFS(t))
	if err != nil {
		t.Fatal(err)
	}
	c, err := compileServing(context.Background(), set)
	if err != nil {
		t.Fatal(err)
	}
	schemaCheck, err := rego.New(
		rego.Query("json.match_schema(input.doc, input.schema)"),
	).PrepareForEval(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var schema any
	_ = json.Unmarshal(policies.InputSchema(), &schema)

	files, _ := filepath.Glob(filepath.Join("testdata", "inputs", "*.json"))
	if len(files) < 4 {
		t.Fatalf("found %d input documents", len(files))
	}
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var doc any
			if err := json.Unmarshal(raw, &doc); err != nil {
				t.Fatal(err)
			}
			rs, err := schemaCheck.Eval(context.Background(), rego.EvalInput(map[string]any{"doc": doc, "schema": schema}))
			if err != nil {
				t.Fatal(err)
			}
			if res := rs[0].Expressions[0].Value.([]any); res[0] != true {
				t.Errorf("document does not match the input schema: %v", res[1])
			}

			in, err := ParseInput(raw)
			if err != nil {
				t.Fatal(err)
			}
			back, err := json.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			var backDoc any
			_ = json.Unmarshal(back, &backDoc)
			if diff := cmp.Diff(doc, backDoc); diff != "" {
				t.Errorf("document through Input and back (-file +Go):\n%s", diff)
			}

			viaGo, err := c.eval(context.Background(), in, now)
			if err != nil {
				t.Fatal(err)
			}
			rsRaw, err := c.query.Eval(context.Background(), rego.EvalInput(doc), rego.EvalTime(now))
			if err != nil || len(rsRaw) == 0 {
				t.Fatalf("raw document: %v", err)
			}
			if diff := cmp.Diff(rsRaw[0].Expressions[0].Value, viaGo); diff != "" {
				t.Errorf("decision from the raw document (-) vs from Input (+):\n%s", diff)
			}
		})
	}
}

func TestInputValueMatchesJSON(t *testing.T) {
	t.Parallel()
	tests := map[string]Input{
		"zero":  {},
		"query": queryInput(clinician("DE"), "Patient", "NL"),
		"release with everything": {
			Phase:     PhaseRelease,
			Requester: auth.Requester{ClientID: "c", Org: "o", Country: "NL", Role: "nurse", PurposeOfUse: "COC", Scopes: []string{"system/*.rs", "system/Patient.read"}, BreakGlass: true, TokenID: "jti-never-in-input"},
			Action:    Action{Interaction: "operation", ResourceType: "Patient", Operation: "summary"},
			Source:    &Source{ID: "ua", Country: "UA"},
			Resource:  &Resource{Type: "Condition", Security: []Coding{{System: "s", Code: "HIV"}}, Category: []string{"a|b"}, Class: "C"},
			Consent: []Provision{
				{ConsentID: "c1", Type: "deny", Level: 0, Start: "2024", End: "2025-01-01T00:00:00.000000001Z"},
				{ConsentID: "c1", Type: "deny", Start: "2024-13", End: "soon"},
				{ConsentID: "c1", Type: "permit", Level: 2, ActorCountries: []string{"NL"}, ActorOrgs: []string{"o"}, Purposes: []string{"COC"}, Classes: []string{"Condition"}, SecurityLabels: []string{"HIV"}},
			},
		},
		"nil lists":             {Phase: PhaseRelease, Resource: &Resource{Type: "Patient"}, Consent: []Provision{{Type: "deny"}}},
		"match":                 {Phase: PhaseQuery, Source: &Source{ID: "nl", Country: "NL"}, Match: &Match{Traits: []string{"birthDate", "family", "given"}}},
		"match, no traits":      {Phase: PhaseQuery, Match: &Match{}},
		"statistics":            {Phase: PhaseQuery, Source: &Source{ID: "nl", Country: "NL"}, Statistics: &Statistics{Measure: "mhp-tb-active", Protected: true, Strata: []Stratum{{Code: "sex", Class: "P"}}, PeriodMonths: 3}},
		"statistics, no strata": {Phase: PhaseQuery, Statistics: &Statistics{Measure: "m"}},
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			n := in.normalized()
			b, err := json.Marshal(n)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte("null")) || bytes.Contains(b, []byte("jti-never-in-input")) {
				t.Errorf("normalized JSON %s holds null or the token id", b)
			}
			// Numbers as written: period bounds are nanoseconds, beyond
			// what a float64 holds exactly.
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.UseNumber()
			var doc any
			if err := dec.Decode(&doc); err != nil {
				t.Fatal(err)
			}
			want, err := ast.InterfaceToValue(doc)
			if err != nil {
				t.Fatal(err)
			}
			if got := n.value(); got.Compare(want) != 0 {
				t.Errorf("value()\n got %v\nwant %v", got, want)
			}
		})
	}
}

func TestParseInputRejects(t *testing.T) {
	t.Parallel()
	base := string(readTestdata(t, "inputs/query-domestic.json"))
	tests := map[string]string{
		"protected attribute": strings.Replace(base, `"role"`, `"gender": "female", "role"`, 1),
		"patient object":      strings.Replace(base, `"phase"`, `"patient": {"birthDate": "1990"}, "phase"`, 1),
		"two documents":       base + base,
		"wrong type":          strings.Replace(base, `"break_glass": false`, `"break_glass": "no"`, 1),
		"not json":            "phase: query",
	}
	for name, doc := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseInput([]byte(doc)); !errors.Is(err, ErrInput) {
				t.Errorf("ParseInput = %v, want ErrInput", err)
			}
		})
	}
}

func FuzzParseInput(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "inputs", "*.json"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"consent": null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := ParseInput(b)
		if err != nil {
			return
		}
		// What parses must render as a Rego value like its JSON does.
		out, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		_ = json.Unmarshal(out, &doc)
		want, err := ast.InterfaceToValue(doc)
		if err != nil {
			t.Fatal(err)
		}
		if in.value().Compare(want) != 0 {
			t.Errorf("value() differs from JSON for %s", out)
		}
	})
}
