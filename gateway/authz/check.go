package authz

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/format"

	"github.com/migrant-health/mhg/policies"
)

// ErrCheckFailed is wrapped by Check's error when it found problems.
var ErrCheckFailed = errors.New("policy check failed")

// Problem kinds.
const (
	ProblemLoad      = "load"      // files that cannot be read or parsed
	ProblemData      = "data"      // invalid agreements
	ProblemCompile   = "compile"   // Rego that does not compile
	ProblemSchema    = "schema"    // a rule reads input outside the schema
	ProblemProtected = "protected" // the schema names a protected attribute
	ProblemFormat    = "format"    // a file is not in `opa fmt` style
	ProblemLint      = "lint"      // unused variables, rules, imports; undefined references
	ProblemTest      = "test"      // failing Rego tests or rules no test hits
)

// Problem is one finding of Check.
type Problem struct {
	// Kind is one of the Problem* constants.
	Kind string `json:"kind"`
	// File is relative to the policy directory; Line is 1-based, 0 when
	// the problem is about a whole file.
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	// Message says what is wrong, for people.
	Message string `json:"message"`
}

// String renders the problem as file:line: kind: message.
func (p Problem) String() string {
	switch {
	case p.File != "" && p.Line > 0:
		return fmt.Sprintf("%s:%d: %s: %s", p.File, p.Line, p.Kind, p.Message)
	case p.File != "":
		return fmt.Sprintf("%s: %s: %s", p.File, p.Kind, p.Message)
	}
	return fmt.Sprintf("%s: %s", p.Kind, p.Message)
}

// Report is what Check found.
type Report struct {
	// Dir is the directory checked ("built-in policies" for "").
	Dir string `json:"dir"`
	// Revision is its revision, when it could be read.
	Revision string `json:"revision,omitempty"`
	// Modules, Rules, Agreements and Tests count what was checked.
	Modules    int `json:"modules"`
	Rules      int `json:"rules"`
	Agreements int `json:"agreements"`
	Tests      int `json:"tests"`
	// InputPaths are the input paths the policies read, sorted.
	InputPaths []string `json:"input_paths"`
	// Problems are sorted by file and line.
	Problems []Problem `json:"problems"`
}

// OK reports whether the check found nothing.
func (r Report) OK() bool { return len(r.Problems) == 0 }

// Write prints the report for people: one line per problem, then a
// summary line.
func (r Report) Write(w io.Writer) {
	for _, p := range r.Problems {
		fmt.Fprintln(w, p)
	}
	status := "OK"
	if !r.OK() {
		status = fmt.Sprintf("FAIL: %d problem(s)", len(r.Problems))
	}
	fmt.Fprintf(w, "%s: revision %s, %d modules, %d rules, %d agreements, %d tests: %s\n",
		r.Dir, r.Revision, r.Modules, r.Rules, r.Agreements, r.Tests, status)
}

// protectedWords are attributes WHA61.17 and the MHP forbid as inputs to
// access decisions. A schema property whose name contains one of them
// fails the check.
var protectedWords = []string{
	"sex", "gender", "birth", "age", "religio", "nationality", "citizen",
	"race", "ethnic", "indigenous", "tribal", "iwi", "language", "arrival",
	"origin", "marital", "pronoun",
}

// protectedName reports whether a property name looks like a protected
// attribute. Words are matched on name segments, so "page" or "usage"
// do not trip "age".
func protectedName(name string) (string, bool) {
	segments := strings.FieldsFunc(strings.ToLower(name), func(r rune) bool {
		return r == '_' || r == '-' || r == '.'
	})
	for _, seg := range segments {
		for _, w := range protectedWords {
			if seg == w || (len(w) > 3 && strings.HasPrefix(seg, w)) {
				return w, true
			}
		}
	}
	return "", false
}

// Check checks a policy directory ("" for the built-in policies) the way
// `mhg policy check` reports it: it loads the files and validates the
// agreements; compiles the Rego with every reference to input type-checked
// against the input schema; walks the compiled rules for input paths
// outside the schema (a rule that could read a protected attribute); checks
// the schema itself for protected attributes, and that a schema file in the
// directory is the one built into mhg; lints (unused variables, imports
// and rules, references to undefined rules, `opa fmt` style); and runs the
// Rego tests, which must pass and hit every rule.
//
// The error wraps ErrCheckFailed when the report has problems; the report
// is complete either way.
func Check(ctx context.Context, dir string) (Report, error) {
	fsys, where, err := policyFS(dir)
	if err != nil {
		rep := Report{Dir: where}
		rep.Problems = append(rep.Problems, Problem{Kind: ProblemLoad, Message: err.Error()})
		return rep, fmt.Errorf("%w: %s", ErrCheckFailed, where)
	}
	return CheckFS(ctx, fsys, where)
}

// CheckFS is Check for a policy file system in OPA bundle layout (the
// console's drafts); name says what it is in the report.
func CheckFS(ctx context.Context, fsys fs.FS, name string) (Report, error) {
	where := name
	rep := Report{Dir: where}
	rep.checkSchema(fsys)
	set, err := loadFS(fsys)
	if err != nil {
		kind := ProblemLoad
		if failedStage(err) == stageData {
			kind = ProblemData
		}
		rep.addErrors(kind, err)
	} else {
		rep.Revision = set.revision
		rep.Agreements = len(set.agreements)
		rep.Modules = len(set.serving())
		for name, m := range set.modules {
			if isTestFile(name) {
				for _, r := range m.Rules {
					if strings.HasPrefix(r.Head.Name.String(), "test_") {
						rep.Tests++
					}
				}
				continue
			}
			rep.Rules += len(policyRules(m))
		}
		rep.checkFormat(set)
		if rep.checkCompile(set) {
			rep.checkLint(set)
			tr, err := testSet(ctx, set, TestOptions{})
			if err != nil {
				rep.addErrors(ProblemTest, err)
			} else {
				for _, t := range tr.Tests {
					if t.Outcome == "FAIL" || t.Outcome == "ERROR" {
						rep.Problems = append(rep.Problems, Problem{Kind: ProblemTest, File: t.File, Message: fmt.Sprintf("%s: %s %s", t.Name, t.Outcome, t.Error)})
					}
				}
				for _, u := range tr.Uncovered {
					rep.Problems = append(rep.Problems, Problem{Kind: ProblemTest, File: u.File, Line: u.Line, Message: fmt.Sprintf("no test hits %s", u.Rule)})
				}
				if len(tr.Tests) == 0 {
					rep.Problems = append(rep.Problems, Problem{Kind: ProblemTest, Message: "no Rego tests found"})
				}
			}
		}
	}
	slices.SortStableFunc(rep.Problems, func(a, b Problem) int {
		if c := strings.Compare(a.File, b.File); c != 0 {
			return c
		}
		return a.Line - b.Line
	})
	if !rep.OK() {
		return rep, fmt.Errorf("%w: %s: %d problem(s)", ErrCheckFailed, where, len(rep.Problems))
	}
	return rep, nil
}

// addErrors turns OPA errors (or any error) into problems.
func (r *Report) addErrors(kind string, err error) {
	var errs ast.Errors
	if errors.As(err, &errs) {
		for _, e := range errs {
			p := Problem{Kind: kind, Message: e.Message}
			if e.Location != nil {
				p.File, p.Line = e.Location.File, e.Location.Row
			}
			if e.Code == ast.TypeErr && strings.Contains(e.Message, "undefined ref") {
				p.Kind = ProblemSchema
			}
			r.Problems = append(r.Problems, p)
		}
		return
	}
	r.Problems = append(r.Problems, Problem{Kind: kind, Message: err.Error()})
}

// checkSchema checks the built-in input schema for protected attributes,
// and a schema file in the directory for drift from the built-in one.
func (r *Report) checkSchema(fsys fs.FS) {
	_, doc, err := inputSchema()
	if err != nil {
		r.Problems = append(r.Problems, Problem{Kind: ProblemSchema, File: policies.SchemaPath, Message: err.Error()})
		return
	}
	for _, p := range schemaPaths(doc, "input") {
		last := p[strings.LastIndex(p, ".")+1:]
		if w, bad := protectedName(last); bad {
			r.Problems = append(r.Problems, Problem{Kind: ProblemProtected, File: policies.SchemaPath,
				Message: fmt.Sprintf("%s looks like a protected attribute (%q): policies must not be able to read it", p, w)})
		}
	}
	local, err := fs.ReadFile(fsys, policies.SchemaPath)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		r.Problems = append(r.Problems, Problem{Kind: ProblemSchema, File: policies.SchemaPath, Message: err.Error()})
		return
	}
	var localDoc any
	if err := json.Unmarshal(local, &localDoc); err != nil {
		r.Problems = append(r.Problems, Problem{Kind: ProblemSchema, File: policies.SchemaPath, Message: err.Error()})
		return
	}
	want, _ := json.Marshal(doc)
	got, _ := json.Marshal(localDoc)
	if !bytes.Equal(want, got) {
		r.Problems = append(r.Problems, Problem{Kind: ProblemSchema, File: policies.SchemaPath,
			Message: "differs from the input schema built into mhg: the input is what the gateway supplies; change it in the Go code, not here"})
	}
}

// schemaPaths lists every property path of a JSON schema, dotted, with
// array items as "[_]".
func schemaPaths(schema any, prefix string) []string {
	root, _ := schema.(map[string]any)
	defs, _ := root["definitions"].(map[string]any)
	var out []string
	var walk func(node any, p string, depth int)
	walk = func(node any, p string, depth int) {
		m, ok := node.(map[string]any)
		if !ok || depth > 16 {
			return
		}
		if ref, ok := m["$ref"].(string); ok {
			walk(defs[strings.TrimPrefix(ref, "#/definitions/")], p, depth+1)
			return
		}
		if items, ok := m["items"]; ok {
			out = append(out, p+"[_]")
			walk(items, p+"[_]", depth+1)
		}
		props, _ := m["properties"].(map[string]any)
		names := make([]string, 0, len(props))
		for name := range props {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			q := p + "." + name
			out = append(out, q)
			walk(props[name], q, depth+1)
		}
	}
	walk(root, prefix, 0)
	return out
}

// checkFormat compares every module with OPA's formatter output.
func (r *Report) checkFormat(set *policySet) {
	for name, raw := range set.raw {
		formatted, err := format.SourceWithOpts(name, raw, format.Opts{RegoVersion: ast.RegoV1})
		if err != nil {
			r.Problems = append(r.Problems, Problem{Kind: ProblemFormat, File: name, Message: err.Error()})
			continue
		}
		if !bytes.Equal(formatted, raw) {
			line := firstDiffLine(raw, formatted)
			r.Problems = append(r.Problems, Problem{Kind: ProblemFormat, File: name, Line: line,
				Message: "not in opa fmt style from this line on (Format rewrites it)"})
		}
	}
}

func firstDiffLine(a, b []byte) int {
	la, lb := bytes.Split(a, []byte("\n")), bytes.Split(b, []byte("\n"))
	for i := 0; i < len(la) && i < len(lb); i++ {
		if !bytes.Equal(la[i], lb[i]) {
			return i + 1
		}
	}
	return min(len(la), len(lb)) + 1
}

// checkCompile compiles all modules (tests too) with the input schema and
// in strict mode, then walks the input references of a plain compile. It
// reports whether the policies compiled well enough to lint and test.
func (r *Report) checkCompile(set *policySet) bool {
	c, err := newCompiler()
	if err != nil {
		r.addErrors(ProblemCompile, err)
		return false
	}
	c = c.WithStrict(true)
	ok := true
	if c.Compile(set.modules); c.Failed() {
		for _, e := range c.Errors {
			p := Problem{Kind: ProblemCompile, Message: e.Message}
			if e.Location != nil {
				p.File, p.Line = e.Location.File, e.Location.Row
			}
			switch {
			case e.Code == ast.TypeErr && strings.Contains(e.Message, "undefined ref"):
				p.Kind = ProblemSchema
				p.Message += ": not in the policy input schema"
				ok = false
			case isStrictMessage(e.Message):
				p.Kind = ProblemLint
			default:
				ok = false
			}
			r.Problems = append(r.Problems, p)
		}
	}
	// Without the schema the modules may compile; then the walk names
	// every input path, and replaces the type checker's report of the
	// same line with a clearer one.
	plain := ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV1)
	if plain.Compile(set.modules); plain.Failed() {
		return false
	}
	flagged := r.checkInputRefs(plain, set)
	r.Problems = slices.DeleteFunc(r.Problems, func(p Problem) bool {
		return p.Kind == ProblemSchema && strings.HasPrefix(p.Message, "undefined ref: input") && flagged[fmt.Sprintf("%s:%d", p.File, p.Line)]
	})
	return ok
}

var strictMessages = regexp.MustCompile(`(declared but not used|unused|is deprecated|shadows|redeclared|never used)`)

func isStrictMessage(msg string) bool { return strictMessages.MatchString(msg) }

// checkInputRefs walks every reference to input in the compiled policies
// and fails any whose path leaves the schema. The type checker catches the
// same and more (aliases); this walk names the paths for the report and
// stays correct if a rule reaches input by a dynamic key. It returns the
// file:line positions it flagged.
func (r *Report) checkInputRefs(c *ast.Compiler, set *policySet) map[string]bool {
	flagged := map[string]bool{}
	_, doc, _ := inputSchema()
	allowed := map[string]bool{"input": true}
	for _, p := range schemaPaths(doc, "input") {
		allowed[p] = true
	}
	seen := map[string]bool{}
	for name := range set.modules {
		m := c.Modules[name]
		if m == nil {
			continue
		}
		ast.WalkRefs(m, func(ref ast.Ref) bool {
			if !ref.HasPrefix(ast.InputRootRef) {
				return false
			}
			p, dynamic := inputPath(ref)
			if !seen[p] {
				seen[p] = true
				r.InputPaths = append(r.InputPaths, p)
			}
			loc := ref[0].Location
			if loc != nil && (dynamic || !allowed[p]) {
				flagged[fmt.Sprintf("%s:%d", name, loc.Row)] = true
			}
			switch {
			case dynamic:
				r.addRefProblem(name, loc, fmt.Sprintf("%s reads input with a computed key: the check cannot prove it stays inside the schema", ref))
			case !allowed[p]:
				r.addRefProblem(name, loc, fmt.Sprintf("%s is not in the policy input schema: a policy may read only what the gateway supplies, and never a protected attribute", p))
			}
			return false
		})
	}
	slices.Sort(r.InputPaths)
	return flagged
}

func (r *Report) addRefProblem(file string, loc *ast.Location, msg string) {
	p := Problem{Kind: ProblemSchema, File: file, Message: msg}
	if loc != nil {
		p.Line = loc.Row
	}
	r.Problems = append(r.Problems, p)
}

// inputPath renders a ref to input as a schema path: string keys as
// fields, any variable or number as "[_]" (an array element). dynamic is
// set when a variable selects an object field, which no path can name.
func inputPath(ref ast.Ref) (string, bool) {
	var b strings.Builder
	b.WriteString("input")
	dynamic := false
	_, doc, _ := inputSchema()
	node := doc
	for _, t := range ref[1:] {
		switch v := t.Value.(type) {
		case ast.String:
			b.WriteString("." + string(v))
			node = schemaChild(node, string(v), doc)
		default:
			if schemaIsArray(node, doc) {
				b.WriteString("[_]")
				node = schemaItems(node, doc)
				continue
			}
			dynamic = true
			b.WriteString("[" + t.String() + "]")
			node = nil
		}
	}
	return b.String(), dynamic
}

func schemaResolve(node, root any) map[string]any {
	m, _ := node.(map[string]any)
	if ref, ok := m["$ref"].(string); ok {
		defs, _ := root.(map[string]any)["definitions"].(map[string]any)
		m, _ = defs[strings.TrimPrefix(ref, "#/definitions/")].(map[string]any)
	}
	return m
}

func schemaChild(node any, key string, root any) any {
	props, _ := schemaResolve(node, root)["properties"].(map[string]any)
	return props[key]
}

func schemaIsArray(node, root any) bool {
	return schemaResolve(node, root)["type"] == "array"
}

func schemaItems(node, root any) any {
	return schemaResolve(node, root)["items"]
}

// checkLint finds rules nothing uses and references to rules that do not
// exist, within the mhg packages.
func (r *Report) checkLint(set *policySet) {
	c, err := newCompiler()
	if err != nil {
		return
	}
	if c.Compile(set.modules); c.Failed() {
		return
	}
	defined := map[string]*ast.Rule{}
	for name, m := range c.Modules {
		if isTestFile(name) {
			continue
		}
		for _, rule := range m.Rules {
			defined[rule.Ref().GroundPrefix().String()] = rule
		}
	}
	used := map[string]bool{DecisionQuery: true}
	for name, m := range c.Modules {
		ast.WalkRefs(m, func(ref ast.Ref) bool {
			if !ref.HasPrefix(ast.DefaultRootRef) {
				return false
			}
			prefix := ref.GroundPrefix()
			for i := len(prefix); i > 1; i-- {
				used[prefix[:i].String()] = true
			}
			if isTestFile(name) || len(prefix) <= 3 || !prefix.HasPrefix(ast.MustParseRef("data.mhg.authz")) {
				return false
			}
			found := false
			for i := len(prefix); i > 2; i-- {
				if _, ok := defined[prefix[:i].String()]; ok {
					found = true
					break
				}
			}
			if !found {
				p := Problem{Kind: ProblemLint, File: name, Message: fmt.Sprintf("%s refers to no rule", prefix)}
				if ref[0].Location != nil {
					p.Line = ref[0].Location.Row
				}
				r.Problems = append(r.Problems, p)
			}
			return false
		})
	}
	for path, rule := range defined {
		if used[path] || strings.HasPrefix(rule.Head.Name.String(), "test_") {
			continue
		}
		if used[rule.Ref().GroundPrefix().String()] {
			continue
		}
		p := Problem{Kind: ProblemLint, Message: fmt.Sprintf("rule %s is never used", path)}
		if rule.Location != nil {
			p.File, p.Line = rule.Location.File, rule.Location.Row
		}
		r.Problems = append(r.Problems, p)
		used[rule.Ref().GroundPrefix().String()] = true
	}
}

// Format rewrites the Rego files of a policy directory in `opa fmt`
// style and returns the files it changed, relative to dir.
func Format(dir string) ([]string, error) {
	if dir == "" {
		return nil, errors.New("format: name a policy directory; the built-in policies cannot be rewritten")
	}
	var changed []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != dir && (skipDirs[d.Name()] || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".rego") {
			return nil
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		formatted, err := format.SourceWithOpts(rel, raw, format.Opts{RegoVersion: ast.RegoV1})
		if err != nil {
			return fmt.Errorf("format %s: %w", rel, err)
		}
		if bytes.Equal(raw, formatted) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if err := os.WriteFile(p, formatted, info.Mode().Perm()); err != nil {
			return err
		}
		changed = append(changed, rel)
		return nil
	})
	return changed, err
}
