package authz

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestCheckBuiltinPolicies(t *testing.T) {
	t.Parallel()
	rep, err := Check(context.Background(), "")
	if err != nil {
		var b strings.Builder
		rep.Write(&b)
		t.Fatalf("%v\n%s", err, b.String())
	}
	if rep.Modules < 8 || rep.Rules < 100 || rep.Tests < 60 || rep.Agreements != 5 {
		t.Errorf("report counts look wrong: %+v", rep)
	}
	// The policies read only these paths; none is a protected attribute.
	for _, p := range rep.InputPaths {
		if _, bad := protectedName(p[strings.LastIndex(p, ".")+1:]); bad {
			t.Errorf("policies read %s", p)
		}
	}
	for _, want := range []string{"input.requester.country", "input.resource.security[_]", "input.consent[_]"} {
		if !slices.Contains(rep.InputPaths, want) {
			t.Errorf("input paths %v lack %s", rep.InputPaths, want)
		}
	}
}

// The same check passes on the policies directory as a lawyer edits it:
// the embedded copy and the files are the same bundle.
func TestCheckPoliciesDirectory(t *testing.T) {
	t.Parallel()
	rep, err := Check(context.Background(), filepath.Join("..", "..", "policies"))
	if err != nil {
		var b strings.Builder
		rep.Write(&b)
		t.Fatalf("%v\n%s", err, b.String())
	}
}

func TestCheckFindsProblems(t *testing.T) {
	t.Parallel()
	discriminatory := string(readTestdata(t, "discriminatory/discriminate.rego"))
	tests := []struct {
		name  string
		edit  func(t *testing.T, dir string)
		kind  string
		file  string
		want  []string
		lines []int
	}{
		{
			name: "discriminatory rules",
			edit: func(t *testing.T, dir string) { writeFile(t, dir, "mhg/authz/discriminate.rego", discriminatory) },
			kind: ProblemSchema,
			file: "mhg/authz/discriminate.rego",
			want: []string{"input.resource.nationality is not in the policy input schema", "input.patient.gender is not in the policy input schema", "requester.language"},
		},
		{
			name: "dynamic input key",
			edit: func(t *testing.T, dir string) {
				writeFile(t, dir, "mhg/authz/dyn.rego", "package mhg.authz\n\ndeny contains \"dyn\" if {\n\tsome k\n\tinput.requester[k] == \"x\"\n}\n")
			},
			kind: ProblemSchema,
			file: "mhg/authz/dyn.rego",
			want: []string{"computed key"},
		},
		{
			name: "not formatted",
			edit: func(t *testing.T, dir string) {
				writeFile(t, dir, "mhg/authz/ugly.rego", "package mhg.authz\n\nugly_limit:=3\n\ndeny contains \"ugly\" if count(input.consent) > ugly_limit\n")
			},
			kind: ProblemFormat,
			file: "mhg/authz/ugly.rego",
			want: []string{"opa fmt"},
		},
		{
			name: "unused rule",
			edit: func(t *testing.T, dir string) {
				writeFile(t, dir, "mhg/authz/unused.rego", "package mhg.authz\n\nforgotten_helper := 42\n")
			},
			kind: ProblemLint,
			file: "mhg/authz/unused.rego",
			want: []string{"forgotten_helper is never used"},
		},
		{
			name: "reference to no rule",
			edit: func(t *testing.T, dir string) {
				writeFile(t, dir, "mhg/authz/typo.rego", "package mhg.authz\n\ndeny contains \"typo\" if data.mhg.authz.breakglass\n")
			},
			kind: ProblemLint,
			file: "mhg/authz/typo.rego",
			want: []string{"data.mhg.authz.breakglass refers to no rule"},
		},
		{
			name: "unused variable",
			edit: func(t *testing.T, dir string) {
				writeFile(t, dir, "mhg/authz/var.rego", "package mhg.authz\n\ndeny contains \"var\" if {\n\tx := input.phase\n\tinput.phase == \"nothing\"\n}\n")
			},
			kind: ProblemLint,
			file: "mhg/authz/var.rego",
			want: []string{"x"},
		},
		{
			name: "rule no test hits",
			edit: func(t *testing.T, dir string) {
				writeFile(t, dir, "mhg/authz/untested.rego", "package mhg.authz\n\ndeny contains \"untested\" if input.phase == \"archive\"\n")
			},
			kind:  ProblemTest,
			file:  "mhg/authz/untested.rego",
			want:  []string{`no test hits deny contains "untested"`},
			lines: []int{3},
		},
		{
			name: "failing test",
			edit: func(t *testing.T, dir string) {
				writeFile(t, dir, "mhg/authz/wrong_test.rego", "package mhg.authz_test\n\ntest_wrong if false\n")
			},
			kind: ProblemTest,
			file: "mhg/authz/wrong_test.rego",
			want: []string{"test_wrong: FAIL"},
		},
		{
			name: "invalid agreement",
			edit: func(t *testing.T, dir string) {
				writeFile(t, dir, "data/agreements.json", `{"agreements": [{"id": "x", "title": "x", "kind": "trilateral"}]}`)
			},
			kind: ProblemData,
			want: []string{`"trilateral"`},
		},
		{
			name: "schema file edited",
			edit: func(t *testing.T, dir string) {
				b := readFile(t, dir, "schema/input.json")
				writeFile(t, dir, "schema/input.json", strings.Replace(b, `"org": {`, `"nationality": {"type": "string"}, "org": {`, 1))
			},
			kind: ProblemSchema,
			file: "schema/input.json",
			want: []string{"differs from the input schema built into mhg"},
		},
		{
			name: "syntax error",
			edit: func(t *testing.T, dir string) {
				writeFile(t, dir, "mhg/authz/broken.rego", "package mhg.authz\n\ndeny contains if {\n")
			},
			kind: ProblemLoad,
			want: []string{"broken.rego"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := copyBuiltin(t)
			tt.edit(t, dir)
			rep, err := Check(context.Background(), dir)
			if !errors.Is(err, ErrCheckFailed) {
				t.Fatalf("Check = %v, want ErrCheckFailed", err)
			}
			var text strings.Builder
			rep.Write(&text)
			var mine []Problem
			for _, p := range rep.Problems {
				if p.Kind == tt.kind && (tt.file == "" || p.File == tt.file) {
					mine = append(mine, p)
				}
			}
			if len(mine) == 0 {
				t.Fatalf("no %s problem in %s:\n%s", tt.kind, tt.file, text.String())
			}
			joined := ""
			for _, p := range mine {
				joined += p.String() + "\n"
			}
			for _, w := range tt.want {
				if !strings.Contains(joined, w) {
					t.Errorf("problems lack %q:\n%s", w, joined)
				}
			}
			for _, line := range tt.lines {
				if !slices.ContainsFunc(mine, func(p Problem) bool { return p.Line == line }) {
					t.Errorf("no problem at line %d:\n%s", line, joined)
				}
			}
			if !strings.Contains(text.String(), "FAIL:") {
				t.Errorf("report text lacks the FAIL summary:\n%s", text.String())
			}
		})
	}
}

// The discriminatory fixture does not get past the engine either.
func TestEngineRefusesDiscriminatoryRules(t *testing.T) {
	t.Parallel()
	dir := copyBuiltin(t)
	writeFile(t, dir, "mhg/authz/discriminate.rego", string(readTestdata(t, "discriminatory/discriminate.rego")))
	_, err := New(Options{Dir: dir, Logger: quietLogger()})
	if err == nil || failedStage(err) != stageCompile {
		t.Fatalf("New = %v, want a compile failure", err)
	}
	for _, want := range []string{"input.patient.gender", "input.resource.nationality", "requester.language"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %s: %v", want, err)
		}
	}
}

func TestFormat(t *testing.T) {
	t.Parallel()
	dir := copyBuiltin(t)
	writeFile(t, dir, "mhg/authz/ugly.rego", "package mhg.authz\n\nugly:=3\n")
	changed, err := Format(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(changed, []string{filepath.FromSlash("mhg/authz/ugly.rego")}) {
		t.Errorf("changed = %v, want only ugly.rego", changed)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "mhg", "authz", "ugly.rego"))
	if !strings.Contains(string(b), "ugly := 3") {
		t.Errorf("formatted file:\n%s", b)
	}
	if _, err := Format(""); err == nil {
		t.Error("Format accepted the built-in policies")
	}
}

func TestProtectedName(t *testing.T) {
	t.Parallel()
	tests := map[string]bool{
		"gender": true, "birth_date": true, "birthDate": true, "age": true, "religion": true,
		"nationality": true, "citizenship": true, "race": true, "ethnicity": true, "language": true,
		"arrival_date": true, "country_of_origin": true, "sex": true,
		"page": false, "usage": false, "country": false, "role": false, "purpose_of_use": false,
		"security_labels": false, "classes": false, "break_glass": false, "category": false,
	}
	for name, want := range tests {
		if _, got := protectedName(name); got != want {
			t.Errorf("protectedName(%q) = %v, want %v", name, got, want)
		}
	}
}
