package authz

import (
	"context"
	"encoding/json"
	"fmt"
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
	t.Parallel()
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
	// The guide's sample output has the shape of a real run, and the two
	// tests it adds run (the built-in suite plus two, all passing).
	sample := regexp.MustCompile(`PASS: (\d+)/(\d+)\n\s*Coverage: 100\.0% of lines; rules hit: (\d+)/(\d+) \(100\.0%\)`)
	if m := sample.FindStringSubmatch(string(readme)); m == nil || m[1] != m[2] || m[3] != m[4] {
		t.Errorf("README output sample has not the shape of a passing run")
	}
	base, err := Test(context.Background(), "", TestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("PASS: %d/%d", base.Passed+2, base.Passed+2)
	if !strings.Contains(out.String(), want) || !strings.Contains(out.String(), "rules hit: ") {
		t.Errorf("want %q (the built-in %d tests and the guide's two); the run says:\n%s", want, base.Passed, out.String())
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
	for _, line := range []string{"decision: ALLOW (revision ", "agreements: de-fr-2026", "mhg/authz/agreements.rego:111: basis contains \"agreement.cross-border.permitted\" if {"} {
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
