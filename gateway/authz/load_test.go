package authz

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestLoadBuiltin(t *testing.T) {
	t.Parallel()
	set, err := loadFS(builtinFS(t))
	if err != nil {
		t.Fatal(err)
	}
	if set.revision != "demo-2025.2" {
		t.Errorf("revision = %q, want the .manifest revision demo-2025.2", set.revision)
	}
	if len(set.agreements) != 5 {
		t.Errorf("agreements = %d, want the 5 of the demo set", len(set.agreements))
	}
	if _, ok := set.modules["mhg/authz/main.rego"]; !ok {
		t.Errorf("modules %v lack mhg/authz/main.rego", keys(set.modules))
	}
	if _, ok := set.data["schema"]; ok {
		t.Error("the input schema was loaded as data")
	}
	if _, err := compile(context.Background(), set); err != nil {
		t.Fatal(err)
	}
}

func TestRevisionIsContentHashWithoutManifest(t *testing.T) {
	t.Parallel()
	dir := copyBuiltin(t)
	writeFile(t, dir, ".manifest", `{"roots": ["mhg", "data"]}`)
	a := newEngine(t, Options{Dir: dir})
	if !strings.HasPrefix(a.Revision(), "sha256:") {
		t.Fatalf("revision = %q, want a content hash", a.Revision())
	}
	writeFile(t, dir, "mhg/authz/extra.rego", "package mhg.authz\n\nextra := 1\n")
	b := newEngine(t, Options{Dir: dir})
	if a.Revision() == b.Revision() {
		t.Errorf("revision %q did not change with the content", a.Revision())
	}
}

func TestLoadRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		edit  func(t *testing.T, dir string)
		stage string
		want  string
	}{
		{
			name: "syntax error",
			edit: func(t *testing.T, dir string) {
				writeFile(t, dir, "mhg/authz/broken.rego", "package mhg.authz\n\ndeny contains if {\n")
			},
			stage: stageRead,
			want:  "broken.rego",
		},
		{
			name: "failing test",
			edit: func(t *testing.T, dir string) {
				writeFile(t, dir, "mhg/authz/wrong_test.rego", "package mhg.authz_test\n\nimport data.mhg.authz\n\ntest_us_allowed if {\n\tauthz.allow with input as query(clinician(\"DE\"), \"Patient\", \"US\")\n}\n")
			},
			stage: stageTest,
			want:  "test_us_allowed",
		},
		{
			name: "rule outside the input schema",
			edit: func(t *testing.T, dir string) {
				writeFile(t, dir, "mhg/authz/bias.rego", "package mhg.authz\n\ndeny contains \"bias\" if input.patient.gender == \"female\"\n")
			},
			stage: stageCompile,
			want:  "input.patient.gender",
		},
		{
			name: "invalid agreement",
			edit: func(t *testing.T, dir string) {
				writeFile(t, dir, "data/agreements.json", `{"agreements": [{"id": "Bad Id", "title": "x", "kind": "bilateral", "parties": ["DE"], "purposes": ["TRAET"], "data_classes": ["C"], "resource_types": ["*"], "valid_from": "2025-01-01", "valid_until": "2024-01-01", "explicit_consent_required": false, "break_glass": false, "obligations": []}]}`)
			},
			stage: stageData,
			want:  "TRAET",
		},
		{
			name: "unknown agreement field",
			edit: func(t *testing.T, dir string) {
				writeFile(t, dir, "data/agreements.json", `{"agreements": [{"id": "a", "nationality": "UA"}]}`)
			},
			stage: stageData,
			want:  "nationality",
		},
		{
			name:  "index set by a data file",
			edit:  func(t *testing.T, dir string) { writeFile(t, dir, "mhg/index/data.json", `{"pairs": {}}`) },
			stage: stageData,
			want:  "data.mhg.index",
		},
		{
			name:  "broken manifest",
			edit:  func(t *testing.T, dir string) { writeFile(t, dir, ".manifest", `{"revision": `) },
			stage: stageRead,
			want:  ".manifest",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := copyBuiltin(t)
			tt.edit(t, dir)
			_, err := New(Options{Dir: dir, Logger: quietLogger()})
			if err == nil {
				t.Fatal("New accepted the broken policies")
			}
			if !errors.Is(err, ErrPolicyLoad) {
				t.Errorf("error %v does not wrap ErrPolicyLoad", err)
			}
			if got := failedStage(err); got != tt.stage {
				t.Errorf("stage = %q, want %q (%v)", got, tt.stage, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name %q", err, tt.want)
			}
		})
	}
}

func TestAgreementValidationNamesEveryProblem(t *testing.T) {
	t.Parallel()
	doc := []any{map[string]any{
		"id": "Bad Id", "title": "", "kind": "bilateral", "parties": []any{"DE", "de", "DE"},
		"purposes": []any{"TRAET"}, "data_classes": []any{"X"}, "resource_types": []any{"condition"},
		"valid_from": "2025-01-01", "valid_until": "2024-01-01",
		"obligations": []any{map[string]any{"kind": "shout"}, map[string]any{"kind": "notify", "rule": "x"}},
	}}
	_, err := parseAgreements(doc)
	if !errors.Is(err, ErrAgreements) {
		t.Fatalf("err = %v, want ErrAgreements", err)
	}
	for _, want := range []string{"id:", "title:", "exactly two parties", `"de"`, "named twice", `"TRAET"`, `"X"`, `"condition"`, "before valid_from", `"shout"`, "needs a target", "rule is set by the policy"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestIndexAgreements(t *testing.T) {
	t.Parallel()
	list := []Agreement{
		{ID: "b", Parties: []string{"DE", "NL", "UA"}, Purposes: []string{"TREAT"}, ValidFrom: "2025-01-01", ValidUntil: "2025-12-31"},
		{ID: "a", Parties: []string{"NL", "DE"}, Purposes: []string{"TREAT", "COC"}, ValidFrom: "2025-01-01", ValidUntil: "2025-12-31"},
	}
	idx := indexAgreements(list)
	pairs := idx["pairs"].(map[string]any)
	got := pairs["DE"].(map[string]any)["NL"].(map[string]any)["TREAT"].([]any)
	if len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("pairs.DE.NL.TREAT = %v, want [a b]", got)
	}
	if _, ok := pairs["UA"].(map[string]any)["NL"].(map[string]any)["COC"]; ok {
		t.Error("UA-NL indexed for COC, which only the DE-NL agreement names")
	}
	if _, ok := pairs["DE"].(map[string]any)["DE"]; ok {
		t.Error("a country paired with itself")
	}
	a := idx["agreements"].(map[string]any)["a"].(map[string]any)
	if a["valid_until_ns"].(interface{ String() string }).String() != "1767225600000000000" {
		t.Errorf("valid_until_ns = %v, want 2026-01-01T00:00:00Z (the day after the last valid day)", a["valid_until_ns"])
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
