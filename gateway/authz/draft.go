package authz

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
)

// What the legal team's tools need beyond the engine: a policy revision
// loaded from any file system (a draft held in memory by the console),
// decided and explained at a given time, and the rules with the sentences
// their comments say about them.

// PolicyFS returns the file system of a policy directory in OPA bundle
// layout; "" is the policies built into the binary.
func PolicyFS(dir string) (fs.FS, error) {
	fsys, _, err := policyFS(dir)
	return fsys, err
}

// TestFS is Test for a policy file system.
func TestFS(ctx context.Context, fsys fs.FS, opts TestOptions) (TestReport, error) {
	set, err := loadFS(fsys)
	if err != nil {
		return TestReport{}, err
	}
	return testSet(ctx, set, opts)
}

// Policy is one policy revision compiled for deciding, outside any engine:
// no reloads, no decision log, no metrics. The console replays recorded
// decisions against a draft with it.
type Policy struct {
	c *compiled
}

// Prepare loads and compiles the policies of fsys (tests are not run:
// TestFS does). The error says which file and line does not compile.
func Prepare(ctx context.Context, fsys fs.FS) (*Policy, error) {
	set, err := loadFS(fsys)
	if err != nil {
		return nil, err
	}
	c, err := compileServing(ctx, set)
	if err != nil {
		return nil, err
	}
	return &Policy{c: c}, nil
}

// Revision is the policy's revision.
func (p *Policy) Revision() string { return p.c.revision }

// Agreements are the policy's validated agreements.
func (p *Policy) Agreements() []Agreement { return slices.Clone(p.c.set.agreements) }

// Decide evaluates the decision for in as it would have been taken at t
// (agreements in force, consent periods). Errors deny, as in Engine.Decide.
func (p *Policy) Decide(ctx context.Context, in Input, at time.Time) (Decision, error) {
	d := Decision{Revision: p.c.revision}
	result, err := p.c.eval(ctx, in.normalized(), at)
	if err == nil {
		err = d.fill(result)
	}
	if err != nil {
		return Decision{Revision: p.c.revision, Reasons: []string{ReasonError}}, fmt.Errorf("%w: revision %s: %w", ErrEvaluation, p.c.revision, err)
	}
	return d, nil
}

// Explain explains the decision for in as taken at t.
func (p *Policy) Explain(ctx context.Context, in Input, at time.Time) (Explanation, error) {
	return p.c.explain(ctx, in.normalized(), at)
}

// ExplainAt is Explain with the engine's active revision as at time t, for
// explaining a recorded decision under the rules in force now.
func (e *Engine) ExplainAt(ctx context.Context, in Input, at time.Time) (Explanation, error) {
	c := e.cur.Load()
	if c == nil {
		return Explanation{}, ErrNoPolicy
	}
	return c.explain(ctx, in.normalized(), at)
}

// RuleDoc is one rule id of the policies with what its comment says.
type RuleDoc struct {
	// ID is the reason id the rule adds (a deny, basis or note) or the
	// rule id of an obligation.
	ID string
	// Kind is deny, basis, notes or obligations.
	Kind string
	// Text is the comment block right above the rule, as one sentence
	// or paragraph; empty when the rule has none.
	Text string
	// File and Line locate the rule.
	File string
	Line int
}

// RuleDocs lists every rule id the policies of fsys can give, with the
// comment above the rule that gives it, sorted by id. A rule id given by
// several rules is listed once, at the first of them, with their distinct
// comments joined.
func RuleDocs(fsys fs.FS) ([]RuleDoc, error) {
	set, err := loadFS(fsys)
	if err != nil {
		return nil, err
	}
	var out []RuleDoc
	for name, m := range set.serving() {
		for _, rule := range m.Rules {
			kind := rule.Head.Name.String()
			if !reasonSets[kind] || rule.Head.Key == nil || rule.Location == nil {
				continue
			}
			id := ""
			switch k := rule.Head.Key.Value.(type) {
			case ast.String:
				id = string(k)
			case ast.Object:
				if v := k.Get(ast.StringTerm("rule")); v != nil {
					if s, ok := v.Value.(ast.String); ok {
						id = string(s)
					}
				}
			}
			if id == "" {
				continue
			}
			out = append(out, RuleDoc{ID: id, Kind: kind, Text: commentAbove(m, rule.Location.Row), File: name, Line: rule.Location.Row})
		}
	}
	slices.SortFunc(out, func(a, b RuleDoc) int {
		if c := strings.Compare(a.ID, b.ID); c != 0 {
			return c
		}
		if c := strings.Compare(a.File, b.File); c != 0 {
			return c
		}
		return a.Line - b.Line
	})
	merged := out[:0]
	for _, d := range out {
		if n := len(merged); n > 0 && merged[n-1].ID == d.ID {
			if d.Text != "" && !strings.Contains(merged[n-1].Text, d.Text) {
				merged[n-1].Text = strings.TrimSpace(merged[n-1].Text + " " + d.Text)
			}
			continue
		}
		merged = append(merged, d)
	}
	return merged, nil
}

// commentAbove joins the comment lines that end right above row.
func commentAbove(m *ast.Module, row int) string {
	byRow := map[int]string{}
	for _, c := range m.Comments {
		if c.Location != nil {
			byRow[c.Location.Row] = strings.TrimSpace(string(c.Text))
		}
	}
	var lines []string
	for r := row - 1; r > 0; r-- {
		t, ok := byRow[r]
		if !ok {
			break
		}
		lines = append(lines, t)
	}
	slices.Reverse(lines)
	return strings.Join(lines, " ")
}

// AgreementsPath is where the agreements are in a policy file system.
const AgreementsPath = "data/agreements.json"

// ParseAgreementsFile reads and validates an agreements file
// ({"agreements": [...]}) as the engine does when it loads the policies.
// A JSON syntax error names its line; every problem of the agreements is
// reported at once (errors wrapping ErrAgreements).
func ParseAgreementsFile(b []byte) ([]Agreement, error) {
	var doc struct {
		Agreements json.RawMessage `json:"agreements"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return nil, fmt.Errorf("%w: line %d: %v", ErrAgreements, 1+bytes.Count(b[:min(int(syn.Offset), len(b))], []byte("\n")), err)
		}
		return nil, fmt.Errorf("%w: %v", ErrAgreements, err)
	}
	var list any
	if len(doc.Agreements) == 0 {
		return nil, fmt.Errorf("%w: no \"agreements\" list", ErrAgreements)
	}
	if err := json.Unmarshal(doc.Agreements, &list); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAgreements, err)
	}
	return parseAgreements(list)
}

// FormatAgreementsFile renders agreements as an agreements file, indented
// as the repository keeps it.
func FormatAgreementsFile(list []Agreement) ([]byte, error) {
	raw, err := json.Marshal(list)
	if err != nil {
		return nil, fmt.Errorf("agreements: %w", err)
	}
	// The policy names each obligation's rule; the file leaves it out.
	var docs []map[string]any
	if err := json.Unmarshal(raw, &docs); err != nil {
		return nil, fmt.Errorf("agreements: %w", err)
	}
	for _, d := range docs {
		obligations, _ := d["obligations"].([]any)
		for _, o := range obligations {
			if m, ok := o.(map[string]any); ok {
				delete(m, "rule")
			}
		}
		if obligations == nil {
			d["obligations"] = []any{}
		}
	}
	b, err := json.MarshalIndent(map[string]any{"agreements": docs}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("agreements: %w", err)
	}
	return append(b, '\n'), nil
}

// Bundle packs a policy file system as an OPA bundle that the engine reads
// from a bundle server (Options.BundleURL): the Rego modules with their
// tests, and every data file placed under its folder, as `opa build`
// without -b packs them. revision names it in the manifest.
func Bundle(fsys fs.FS, revision string) (bundle.Bundle, error) {
	res, err := readFS(fsys)
	if err != nil {
		return bundle.Bundle{}, fmt.Errorf("bundle: %w", err)
	}
	b := bundle.Bundle{Data: res.Documents}
	b.Manifest.Revision = revision
	b.Manifest.Roots = &[]string{"mhg", "data"}
	names := make([]string, 0, len(res.Modules))
	for name := range res.Modules {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		f := res.Modules[name]
		b.Modules = append(b.Modules, bundle.ModuleFile{URL: "/" + name, Path: "/" + name, Raw: f.Raw, Parsed: f.Parsed})
	}
	return b, nil
}
