package authz

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The step-by-step guide in policies/README.md works as written: its
// agreement and its tests, added to the policies, pass, and explain gives
// the decision it shows.
func TestReadmeGuide(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "policies", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```(json|rego)\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	var agreementJSON, regoTests string
	for _, b := range blocks {
		body := dedent(b[2])
		switch {
		case b[1] == "json" && strings.Contains(body, `"id": "de-fr-2026"`):
			agreementJSON = body
		case b[1] == "rego" && strings.Contains(body, "test_germany_and_france"):
			regoTests = body
		}
	}
	if agreementJSON == "" || regoTests == "" {
		t.Fatal("the README lost its example agreement or tests")
	}
	var a Agreement
	if err := json.Unmarshal([]byte(agreementJSON), &a); err != nil {
		t.Fatalf("README agreement: %v", err)
	}

	dir := copyBuiltin(t)
	var doc struct {
		Agreements []Agreement `json:"agreements"`
	}
	if err := json.Unmarshal([]byte(readFile(t, dir, "data/agreements.json")), &doc); err != nil {
		t.Fatal(err)
	}
	doc.Agreements = append(doc.Agreements, a)
	b, _ := json.MarshalIndent(doc, "", "  ")
	writeFile(t, dir, "data/agreements.json", string(b))
	writeFile(t, dir, "mhg/authz/agreements_test.rego", readFile(t, dir, "mhg/authz/agreements_test.rego")+"\n"+regoTests)

	var out strings.Builder
	ok, err := RunTests(context.Background(), dir, &out, TestOptions{})
	if err != nil || !ok {
		t.Fatalf("README tests: ok=%v err=%v\n%s", ok, err, out.String())
	}
	if !strings.Contains(out.String(), "rules hit: ") || !strings.Contains(string(readme), "PASS: 69/69") {
		t.Errorf("README output sample out of date:\n%s", out.String())
	}
	if m := regexp.MustCompile(`PASS: (\d+)/`).FindStringSubmatch(out.String()); m == nil || m[1] != "69" {
		t.Errorf("the README says 69 tests pass; the run says:\n%s", out.String())
	}
	if _, err := Check(context.Background(), dir); err != nil {
		t.Errorf("check after the README change: %v", err)
	}

	in, _ := json.Marshal(queryInput(clinician("DE"), "Patient", "FR").normalized())
	x, err := Explain(context.Background(), dir, in)
	if err != nil {
		t.Fatal(err)
	}
	if !x.Decision.Allow || !slices.Equal(x.Decision.Agreements, []string{"de-fr-2026"}) {
		t.Errorf("explain: %+v", x.Decision)
	}
	var text strings.Builder
	x.Write(&text)
	if !strings.Contains(text.String(), "reasons:\n  agreement.cross-border.permitted\n") {
		t.Errorf("explain output:\n%s", text.String())
	}
	for _, line := range []string{"decision: ALLOW (revision ", "agreements: de-fr-2026", "mhg/authz/agreements.rego:110: basis contains \"agreement.cross-border.permitted\" if {"} {
		if !strings.Contains(text.String(), line) || !strings.Contains(string(readme), line) {
			t.Errorf("explain output and README should both hold %q; got:\n%s", line, text.String())
		}
	}
}

// dedent removes the indentation a Markdown list puts before a code block.
func dedent(s string) string {
	lines := strings.Split(s, "\n")
	indent := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		n := len(l) - len(strings.TrimLeft(l, " "))
		if indent < 0 || n < indent {
			indent = n
		}
	}
	for i, l := range lines {
		if len(l) >= indent && indent > 0 {
			lines[i] = l[indent:]
		}
	}
	return strings.Join(lines, "\n")
}
