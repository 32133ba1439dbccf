package authz

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/cover"
)

// TestOptions tune RunTests and Test. The zero value runs every test,
// prints failures only, and fails when a rule is not hit by any test.
type TestOptions struct {
	// Verbose prints every test with its outcome and duration, as
	// `opa test -v` does.
	Verbose bool
	// Run is a regular expression selecting tests by name, as
	// `opa test --run`; empty runs all.
	Run string
	// AllowUncovered reports rules no test hits without failing the run.
	AllowUncovered bool
}

// TestReport is the outcome of running a policy directory's Rego tests.
type TestReport struct {
	// Revision is the revision tested.
	Revision string
	// Tests holds one entry per test, sorted by name.
	Tests []TestResult
	// Passed, Failed, Errored and Skipped count Tests.
	Passed, Failed, Errored, Skipped int
	// LineCoverage is the percentage of policy lines (tests excluded) the
	// tests evaluated, as `opa test --coverage` computes it.
	LineCoverage float64
	// Rules counts the rules of the policies (tests excluded); Uncovered
	// lists those no test hit (a rule is hit when it produced a value in
	// some test), Hit those some test hit; both sorted by file and line.
	Rules     int
	Uncovered []RuleRef
	Hit       []RuleRef
}

// TestResult is one Rego test.
type TestResult struct {
	// Name is the test's full name, data.<package>.<test>.
	Name string
	// File is the test file, relative to the policy directory, and Line
	// the line the test starts on.
	File string
	Line int
	// Outcome is PASS, FAIL, ERROR or SKIPPED.
	Outcome string
	// Error explains an ERROR.
	Error string
	// Duration is how long it ran.
	Duration time.Duration
}

// RuleRef names one rule in a policy file.
type RuleRef struct {
	// File is relative to the policy directory; Line is 1-based.
	File string
	Line int
	// Rule is the rule's head, shortened: `deny contains "scope.insufficient"`.
	Rule string
}

// String renders the rule as file:line: head.
func (r RuleRef) String() string { return fmt.Sprintf("%s:%d: %s", r.File, r.Line, r.Rule) }

// OK reports whether every test passed and, unless allowUncovered, every
// rule was hit.
func (r TestReport) OK(allowUncovered bool) bool {
	return r.Failed == 0 && r.Errored == 0 && r.Passed > 0 && (allowUncovered || len(r.Uncovered) == 0)
}

// Test runs the Rego tests of a policy directory ("" for the built-in
// policies) with coverage. The error is about loading or running, not
// about failing tests: those are in the report.
func Test(ctx context.Context, dir string, opts TestOptions) (TestReport, error) {
	fsys, where, err := policyFS(dir)
	if err != nil {
		return TestReport{}, fmt.Errorf("%s: %w", where, err)
	}
	set, err := loadFS(fsys)
	if err != nil {
		return TestReport{}, fmt.Errorf("%s: %w", where, err)
	}
	return testSet(ctx, set, opts)
}

func testSet(ctx context.Context, set *policySet, opts TestOptions) (TestReport, error) {
	cov := cover.New()
	results, err := runRegoTests(ctx, set, cov, opts.Run)
	if err != nil {
		return TestReport{}, failed(stageTest, err)
	}
	rep := TestReport{Revision: set.revision}
	for _, r := range results {
		tr := TestResult{
			Name:     fmt.Sprintf("%s.%s", r.Package, r.Name),
			Duration: r.Duration,
		}
		if r.Location != nil {
			tr.File, tr.Line = r.Location.File, r.Location.Row
		}
		switch {
		case r.Skip:
			tr.Outcome = "SKIPPED"
			rep.Skipped++
		case r.Error != nil:
			tr.Outcome = "ERROR"
			tr.Error = r.Error.Error()
			rep.Errored++
		case r.Fail:
			tr.Outcome = "FAIL"
			rep.Failed++
		default:
			tr.Outcome = "PASS"
			rep.Passed++
		}
		rep.Tests = append(rep.Tests, tr)
	}

	serving := set.serving()
	report := cov.Report(serving)
	var covered, total int
	for name := range serving {
		if fr, ok := report.Files[name]; ok {
			c, n := rangeLines(fr.Covered), rangeLines(fr.NotCovered)
			covered += c
			total += c + n
		}
	}
	if total > 0 {
		rep.LineCoverage = 100 * float64(covered) / float64(total)
	}
	for name, m := range serving {
		for _, rule := range policyRules(m) {
			rep.Rules++
			row := rule.Head.Location.Row
			ref := RuleRef{File: name, Line: row, Rule: ruleHead(rule)}
			if report.IsCovered(name, row) {
				rep.Hit = append(rep.Hit, ref)
			} else {
				rep.Uncovered = append(rep.Uncovered, ref)
			}
		}
	}
	byPlace := func(a, b RuleRef) int {
		if c := strings.Compare(a.File, b.File); c != 0 {
			return c
		}
		return a.Line - b.Line
	}
	slices.SortFunc(rep.Uncovered, byPlace)
	slices.SortFunc(rep.Hit, byPlace)
	return rep, nil
}

func rangeLines(ranges []cover.Range) int {
	n := 0
	for _, rg := range ranges {
		n += rg.End.Row - rg.Start.Row + 1
	}
	return n
}

// policyRules lists every rule of a module, else branches included: each
// is a separate way to produce a value and needs its own test.
func policyRules(m *ast.Module) []*ast.Rule {
	var out []*ast.Rule
	for _, r := range m.Rules {
		for x := r; x != nil; x = x.Else {
			out = append(out, x)
		}
	}
	return out
}

// ruleHead renders a rule head on one line, shortened for people.
func ruleHead(r *ast.Rule) string {
	s := headLine(r)
	if len(s) > 90 {
		s = s[:87] + "..."
	}
	return s
}

// RunTests runs the Rego tests of a policy directory ("" for the built-in
// policies) and writes what `opa test` would: failures (every test with
// Verbose), then the summary line "PASS: n/n" or "FAIL: n/n", then the
// coverage: lines covered, rules hit, and each rule no test hits. ok is
// false when a test fails or errors, or when a rule is not hit (unless
// opts.AllowUncovered). err reports policies that could not be loaded or
// compiled, which fail the run as well.
func RunTests(ctx context.Context, dir string, w io.Writer, opts TestOptions) (ok bool, err error) {
	rep, err := Test(ctx, dir, opts)
	if err != nil {
		fmt.Fprintf(w, "ERROR: %v\n", err)
		return false, err
	}
	rep.Write(w, opts.Verbose)
	return rep.OK(opts.AllowUncovered), nil
}

// Write prints the report as RunTests does.
func (r TestReport) Write(w io.Writer, verbose bool) {
	file := ""
	for _, t := range r.Tests {
		if !verbose && t.Outcome == "PASS" {
			continue
		}
		if t.File != file {
			if file != "" {
				fmt.Fprintln(w)
			}
			file = t.File
			fmt.Fprintf(w, "%s:\n", file)
		}
		switch t.Outcome {
		case "ERROR":
			fmt.Fprintf(w, "%s: ERROR (%s)\n  %s\n", t.Name, roundDuration(t.Duration), t.Error)
		default:
			fmt.Fprintf(w, "%s: %s (%s)\n", t.Name, t.Outcome, roundDuration(t.Duration))
		}
	}
	if file != "" {
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, strings.Repeat("-", 80))
	total := len(r.Tests)
	if r.Passed > 0 {
		fmt.Fprintf(w, "PASS: %d/%d\n", r.Passed, total)
	}
	if r.Failed > 0 {
		fmt.Fprintf(w, "FAIL: %d/%d\n", r.Failed, total)
	}
	if r.Errored > 0 {
		fmt.Fprintf(w, "ERROR: %d/%d\n", r.Errored, total)
	}
	if r.Skipped > 0 {
		fmt.Fprintf(w, "SKIPPED: %d/%d\n", r.Skipped, total)
	}
	if total == 0 {
		fmt.Fprintln(w, "no tests found")
	}
	hit := r.Rules - len(r.Uncovered)
	pct := 100.0
	if r.Rules > 0 {
		pct = 100 * float64(hit) / float64(r.Rules)
	}
	fmt.Fprintf(w, "Coverage: %.1f%% of lines; rules hit: %d/%d (%.1f%%)\n", r.LineCoverage, hit, r.Rules, pct)
	for _, u := range r.Uncovered {
		fmt.Fprintf(w, "NOT HIT: %s\n", u)
	}
}

func roundDuration(d time.Duration) time.Duration {
	switch {
	case d > time.Second:
		return d.Round(time.Millisecond)
	case d > time.Millisecond:
		return d.Round(time.Microsecond)
	}
	return d
}
