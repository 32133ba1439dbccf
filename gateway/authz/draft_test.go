package authz

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPrepareDecidesAsTheEngine(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p, err := Prepare(ctx, builtinFS(t))
	if err != nil {
		t.Fatal(err)
	}
	e := builtinEngine(t)
	at := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	for name, in := range map[string]Input{
		"domestic":     queryInput(clinician("DE"), "Patient", "DE"),
		"cross-border": queryInput(clinician("DE"), "Patient", "NL"),
		"no agreement": queryInput(clinician("US"), "Patient", "DE"),
	} {
		got, err := p.Decide(ctx, in, at)
		if err != nil {
			t.Fatal(err)
		}
		want := decide(t, e, in)
		if got.Allow != want.Allow || !slices.Equal(got.Reasons, want.Reasons) || got.Revision != want.Revision {
			t.Errorf("%s: Prepare decided %v %v (%s), the engine %v %v (%s)", name, got.Allow, got.Reasons, got.Revision, want.Allow, want.Reasons, want.Revision)
		}
	}
	// The decision time matters: the expired DE-UA pilot was in force in 2023.
	in := releaseInput(clinician("DE"), clinical("Immunization"), "UA")
	in.Requester.PurposeOfUse = "PUBHLTH"
	in.Requester.Role = "public-health"
	in2023, _ := p.Decide(ctx, in, time.Date(2023, 6, 1, 0, 0, 0, 0, time.UTC))
	in2025, _ := p.Decide(ctx, in, at)
	if !in2023.Allow || in2025.Allow {
		t.Errorf("the DE-UA pilot: 2023 allow=%v (want true), 2025 allow=%v (want false)", in2023.Allow, in2025.Allow)
	}
}

func TestTestFSNamesTheLineOfAFailingTest(t *testing.T) {
	t.Parallel()
	dir := copyBuiltin(t)
	test := "mhg/authz/main_test.rego"
	b, err := os.ReadFile(filepath.Join(dir, test))
	if err != nil {
		t.Fatal(err)
	}
	src := string(b) + "\ntest_fails_on_purpose if {\n\tauthz.allow with input as {}\n}\n"
	writeFile(t, dir, test, src)
	rep, err := TestFS(context.Background(), os.DirFS(dir), TestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantLine := strings.Count(string(b), "\n") + 2
	found := false
	for _, r := range rep.Tests {
		if strings.HasSuffix(r.Name, "test_fails_on_purpose") {
			found = true
			if r.Outcome != "FAIL" || r.File != test || r.Line != wantLine {
				t.Errorf("got %s at %s:%d, want FAIL at %s:%d", r.Outcome, r.File, r.Line, test, wantLine)
			}
		}
	}
	if !found || rep.OK(false) {
		t.Errorf("the failing test is missing or the report is OK: %+v", rep)
	}
	if len(rep.Hit)+len(rep.Uncovered) != rep.Rules || len(rep.Hit) == 0 {
		t.Errorf("hit %d + uncovered %d != rules %d", len(rep.Hit), len(rep.Uncovered), rep.Rules)
	}
}

func TestRuleDocsQuoteTheComments(t *testing.T) {
	t.Parallel()
	docs, err := RuleDocs(builtinFS(t))
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]RuleDoc{}
	for _, d := range docs {
		byID[d.ID] = d
	}
	for id, want := range map[string]string{
		"firewall.query.purpose-forbidden": "no source is contacted for a forbidden purpose",
		"purpose.missing":                  "No purpose of use, no data.",
		"break-glass.notify":               "the patient and the privacy officer",
		"disclosure-report.auditors-only":  "",
	} {
		d, ok := byID[id]
		if !ok {
			t.Errorf("no rule doc for %s", id)
			continue
		}
		if !strings.Contains(d.Text, want) || d.File == "" || d.Line == 0 {
			t.Errorf("%s: %+v, want text containing %q", id, d, want)
		}
	}
}

func TestParseAgreementsFile(t *testing.T) {
	t.Parallel()
	good, err := fsysRead("../../policies", AgreementsPath)
	if err != nil {
		t.Fatal(err)
	}
	list, err := ParseAgreementsFile(good)
	if err != nil || len(list) != 5 {
		t.Fatalf("%d agreements, %v", len(list), err)
	}
	again, err := FormatAgreementsFile(list)
	if err != nil {
		t.Fatal(err)
	}
	if back, err := ParseAgreementsFile(again); err != nil || len(back) != len(list) {
		t.Fatalf("formatted agreements do not parse back: %v", err)
	}
	if bytes.Contains(again, []byte(`"rule"`)) {
		t.Error("the formatted file names obligation rules, which the policy sets")
	}
	for name, tc := range map[string]struct{ in, want string }{
		"syntax":  {"{\n  \"agreements\": [\n    {\"id\": \"x\",}\n  ]\n}", "line 3"},
		"field":   {`{"agreements": [{"id": "de-fr", "title": "t", "kind": "bilateral", "parties": ["DE"], "purposes": ["TRAET"], "data_classes": ["C"], "resource_types": ["*"], "valid_from": "2026-01-01", "valid_until": "2025-01-01"}]}`, `"TRAET" is not an HL7 v3 PurposeOfUse code`},
		"unknown": {`{"agreements": [], "extra": 1}`, "unknown field"},
		"missing": {`{}`, `no "agreements" list`},
	} {
		_, err := ParseAgreementsFile([]byte(tc.in))
		if !errors.Is(err, ErrAgreements) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrAgreements mentioning %q", name, err, tc.want)
		}
	}
}

func TestDecisionFileRangeAndFind(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	e := newEngine(t, Options{DecisionLog: f, Now: func() time.Time { return clock }})
	var ids []string
	for i, in := range []Input{queryInput(clinician("DE"), "Patient", "DE"), queryInput(clinician("US"), "Patient", "DE"), queryInput(clinician("DE"), "Patient", "NL")} {
		clock = clock.Add(time.Duration(i) * time.Hour)
		ids = append(ids, decide(t, e, in).ID)
	}
	f.Close()
	// An unterminated last line is a write in progress: skipped.
	af, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	af.WriteString(`{"decision_id": "torn`)
	af.Close()

	log := DecisionFile{Path: path}
	var seen []string
	from := time.Date(2025, 6, 1, 0, 30, 0, 0, time.UTC)
	if err := log.Range(context.Background(), from, time.Time{}, func(e LogEntry) error {
		seen = append(seen, e.DecisionID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seen, ids[1:]) {
		t.Errorf("range from %s: %v, want %v", from, seen, ids[1:])
	}
	got, err := log.Find(context.Background(), ids[1])
	if err != nil {
		t.Fatal(err)
	}
	if got.Allowed() || !slices.Contains(got.Reasons(), "agreement.cross-border.no-agreement") || got.Revision() != "demo-2025.2" || got.Input.Requester.Country != "US" {
		t.Errorf("found %+v", got)
	}
	if _, err := log.Find(context.Background(), "no-such-id"); !errors.Is(err, ErrDecisionNotFound) {
		t.Errorf("unknown id: %v", err)
	}
	os.WriteFile(path, []byte("not json\n"), 0o600)
	if err := log.Range(context.Background(), time.Time{}, time.Time{}, func(LogEntry) error { return nil }); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("a broken line: %v", err)
	}
}
