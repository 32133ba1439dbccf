package authz

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// ErrInput wraps every error about an input document given to Explain.
var ErrInput = errors.New("invalid policy input")

// Explanation says how a decision came about.
type Explanation struct {
	// Decision is the decision, as Decide would have returned it (with an
	// ID of its own; explanations are not logged as decisions).
	Decision Decision `json:"decision"`
	// Fired lists the rules that produced a value while deciding, the
	// reason-giving ones (deny, basis, notes, obligations) first, then the
	// others by file and line.
	Fired []FiredRule `json:"fired"`
}

// FiredRule is one rule that produced a value.
type FiredRule struct {
	// Rule is the rule's path, e.g. data.mhg.authz.deny.
	Rule string `json:"rule"`
	// Reason is the rule id it contributed, for rules that add a constant
	// to deny, basis or notes.
	Reason string `json:"reason,omitempty"`
	// File (relative to the policy directory) and Line locate the rule.
	File string `json:"file"`
	Line int    `json:"line"`
	// Head is the rule's first line.
	Head string `json:"head"`
}

// reasonSets are the rules whose values are decision reasons.
var reasonSets = map[string]bool{"deny": true, "basis": true, "notes": true, "obligations": true}

// ParseInput reads a policy input document strictly: an unknown field (a
// protected attribute such as "gender", or a typo) is an error wrapping
// ErrInput that names it.
func ParseInput(b []byte) (Input, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var in Input
	if err := dec.Decode(&in); err != nil {
		return Input{}, fmt.Errorf("%w: %v", ErrInput, err)
	}
	if dec.More() {
		return Input{}, fmt.Errorf("%w: more than one JSON value", ErrInput)
	}
	return in.normalized(), nil
}

// Explain loads a policy directory ("" for the built-in policies) and
// explains the decision for one input document (JSON, as in the decision
// log's "input"): the decision, its reasons, and the rules that fired. It
// does not run the Rego tests; `mhg policy test` does.
func Explain(ctx context.Context, dir string, input []byte) (Explanation, error) {
	in, err := ParseInput(input)
	if err != nil {
		return Explanation{}, err
	}
	fsys, where, err := policyFS(dir)
	if err != nil {
		return Explanation{}, fmt.Errorf("%s: %w", where, err)
	}
	set, err := loadFS(fsys)
	if err != nil {
		return Explanation{}, fmt.Errorf("%s: %w", where, err)
	}
	c, err := compileServing(ctx, set)
	if err != nil {
		return Explanation{}, fmt.Errorf("%s: %w", where, err)
	}
	return c.explain(ctx, in, time.Now())
}

// Explain explains the decision for in with the engine's active revision,
// for the admin $explain endpoint. It neither logs nor counts a decision.
func (e *Engine) Explain(ctx context.Context, in Input) (Explanation, error) {
	c := e.cur.Load()
	if c == nil {
		return Explanation{}, ErrNoPolicy
	}
	return c.explain(ctx, in.normalized(), e.now())
}

func (c *compiled) explain(ctx context.Context, in Input, now time.Time) (Explanation, error) {
	buf := topdown.NewBufferTracer()
	d := Decision{ID: newDecisionID(), Revision: c.revision}
	result, err := c.eval(ctx, in, now, rego.EvalQueryTracer(buf))
	if err == nil {
		err = d.fill(result)
	}
	if err != nil {
		return Explanation{Decision: d}, fmt.Errorf("%w: revision %s: %w", ErrEvaluation, c.revision, err)
	}
	ex := Explanation{Decision: d}
	seen := map[string]bool{}
	for _, ev := range *buf {
		if ev.Op != topdown.ExitOp {
			continue
		}
		rule, ok := ev.Node.(*ast.Rule)
		if !ok || rule.Location == nil || isTestFile(rule.Location.File) {
			continue
		}
		f := FiredRule{
			Rule: rule.Head.Ref().GroundPrefix().String(),
			File: rule.Location.File,
			Line: rule.Location.Row,
			Head: headLine(rule),
		}
		if key := rule.Head.Key; key != nil && reasonSets[rule.Head.Name.String()] {
			if k, ok := key.Value.(ast.String); ok {
				f.Reason = string(k)
			}
		}
		key := fmt.Sprintf("%s:%d", f.File, f.Line)
		if seen[key] {
			continue
		}
		seen[key] = true
		ex.Fired = append(ex.Fired, f)
	}
	slices.SortStableFunc(ex.Fired, func(a, b FiredRule) int {
		ar, br := reasonSets[lastSegment(a.Rule)], reasonSets[lastSegment(b.Rule)]
		switch {
		case ar && !br:
			return -1
		case br && !ar:
			return 1
		}
		if c := strings.Compare(a.File, b.File); c != 0 {
			return c
		}
		return a.Line - b.Line
	})
	return ex, nil
}

func lastSegment(path string) string {
	return path[strings.LastIndex(path, ".")+1:]
}

// headLine renders a rule's first line for people.
func headLine(rule *ast.Rule) string {
	if rule.Default {
		return "default " + rule.Head.String()
	}
	if rule.Location == nil {
		return rule.Head.String()
	}
	return firstLine(rule.Location.Text)
}

func firstLine(text []byte) string {
	s := string(text)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// Write prints the explanation for people: the verdict, the reasons, the
// obligations, the agreements, then the rules that fired.
func (x Explanation) Write(w io.Writer) {
	verdict := "DENY"
	if x.Decision.Allow {
		verdict = "ALLOW"
	}
	fmt.Fprintf(w, "decision: %s (revision %s)\n", verdict, x.Decision.Revision)
	fmt.Fprintf(w, "reasons:\n")
	for _, r := range x.Decision.Reasons {
		fmt.Fprintf(w, "  %s\n", r)
	}
	if len(x.Decision.Agreements) > 0 {
		fmt.Fprintf(w, "agreements: %s\n", strings.Join(x.Decision.Agreements, ", "))
	}
	if len(x.Decision.Obligations) > 0 {
		fmt.Fprintf(w, "obligations:\n")
		for _, o := range x.Decision.Obligations {
			var what []string
			what = append(what, o.Paths...)
			for _, l := range o.Labels {
				what = append(what, l.Code)
			}
			if o.Target != "" {
				what = append(what, o.Target)
			}
			fmt.Fprintf(w, "  %s %s (%s)\n", o.Kind, strings.Join(what, ", "), o.Rule)
		}
	}
	fmt.Fprintf(w, "rules that fired:\n")
	for _, f := range x.Fired {
		fmt.Fprintf(w, "  %s:%d: %s\n", f.File, f.Line, f.Head)
	}
}
