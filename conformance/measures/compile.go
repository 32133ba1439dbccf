package measures

import (
	"fmt"
	"slices"
)

// CompartmentTypes are the resource types a criterion may retrieve from the
// patient's compartment (besides the Patient itself).
var CompartmentTypes = []string{
	"Condition", "Immunization", "Observation", "Procedure", "MedicationStatement",
	"MedicationRequest", "AllergyIntolerance",
}

// constants a criterion may name with %.
var constants = map[string]string{
	"periodStart": "the first day of the measurement period",
	"periodEnd":   "the last day of the measurement period",
	"subject":     "the patient (the MHP Patient)",
}

// functions and how many arguments each takes.
var functions = map[string][2]int{
	"where": {1, 1}, "exists": {0, 1}, "empty": {0, 0}, "count": {0, 0},
	"first": {0, 0}, "not": {0, 0}, "memberOf": {1, 1},
}

// check walks a parsed expression and reports the first thing the
// evaluator would not understand.
func check(src string, n *node, sets map[string]*ValueSet) error {
	if n == nil {
		return nil
	}
	switch n.op {
	case nConst:
		if _, ok := constants[n.name]; !ok {
			return posErr(src, n.pos, "unknown constant %%%s (known: %%periodStart, %%periodEnd, %%subject)", n.name)
		}
	case nRetrieve:
		if n.name != "Patient" && !slices.Contains(CompartmentTypes, n.name) {
			return posErr(src, n.pos, "%s is not a resource type of the patient's compartment the evaluator reads", n.name)
		}
	case nCall:
		arity, ok := functions[n.name]
		if !ok {
			return posErr(src, n.pos, "unknown function %s()", n.name)
		}
		if got := len(n.args) - 1; got < arity[0] || got > arity[1] {
			return posErr(src, n.pos, "%s() takes %d to %d arguments, got %d", n.name, arity[0], arity[1], got)
		}
		if n.name == "memberOf" {
			a := n.args[1]
			url, ok := a.lit.(string)
			if a.op != nLiteral || !ok {
				return posErr(src, a.pos, "memberOf() takes the canonical URL of a value set as a string")
			}
			if sets[url] == nil {
				return posErr(src, a.pos, "value set %s is not shipped with the measures", url)
			}
		}
	}
	for _, a := range n.args {
		if err := check(src, a, sets); err != nil {
			return err
		}
	}
	return nil
}

// Filter is what a source may be asked to filter on for one resource type
// (a push-down): every criterion that reads the type restricts it so. The
// evaluator checks the criteria again on what comes back, so a filter only
// ever saves work.
type Filter struct {
	// CodeElement and Codes restrict the type's code element (code,
	// vaccineCode) to the codes of a value set, as system|code tokens; empty
	// when some criterion reads the type without such a restriction.
	CodeElement string
	Codes       []string
	// DateElement is the date element restricted (onset, occurrence,
	// effective); From and To say it must lie on or after the period start,
	// on or before the period end.
	DateElement string
	From, To    bool
}

// retrieval is what one retrieve of a type in one criterion restricts.
type retrieval struct {
	typ    string
	filter Filter
}

// retrievals lists the retrieves of an expression with what the where()
// right after each restricts (its top-level conjuncts only).
func retrievals(n *node, sets map[string]*ValueSet, out []retrieval) []retrieval {
	if n == nil {
		return out
	}
	if n.op == nRetrieve && n.name != "Patient" {
		return append(out, retrieval{typ: n.name})
	}
	if n.op == nCall && n.name == "where" && n.args[0] != nil && n.args[0].op == nRetrieve && n.args[0].name != "Patient" {
		r := retrieval{typ: n.args[0].name}
		for _, c := range conjuncts(n.args[1]) {
			restrict(&r.filter, c, sets)
		}
		out = append(out, r)
		return retrievals(n.args[1], sets, out)
	}
	for _, a := range n.args {
		out = retrievals(a, sets, out)
	}
	return out
}

// reads lists the types other than Patient an expression retrieves,
// sorted and without repeats.
func reads(n *node, out []string) []string {
	if n == nil {
		return out
	}
	if n.op == nRetrieve && n.name != "Patient" && !slices.Contains(out, n.name) {
		out = append(out, n.name)
		slices.Sort(out)
	}
	for _, a := range n.args {
		out = reads(a, out)
	}
	return out
}

func conjuncts(n *node) []*node {
	if n.op == nBinary && n.name == "and" {
		return append(conjuncts(n.args[0]), conjuncts(n.args[1])...)
	}
	return []*node{n}
}

// restrict reads one conjunct: element.memberOf('vs'), element >= %periodStart,
// element <= %periodEnd.
func restrict(f *Filter, c *node, sets map[string]*ValueSet) {
	if c.op == nCall && c.name == "memberOf" && c.args[0] != nil && c.args[0].op == nIdent && f.CodeElement == "" {
		f.CodeElement = c.args[0].name
		f.Codes = sets[c.args[1].lit.(string)].Tokens()
		return
	}
	if c.op != nBinary || c.args[0].op != nIdent || c.args[1].op != nConst {
		return
	}
	el, k := c.args[0].name, c.args[1].name
	if f.DateElement != "" && f.DateElement != el {
		return
	}
	switch {
	case (c.name == ">=" || c.name == ">") && k == "periodStart":
		f.DateElement, f.From = el, true
	case (c.name == "<=" || c.name == "<") && k == "periodEnd":
		f.DateElement, f.To = el, true
	}
}

// mergeFilters keeps what every retrieve of a type agrees on.
func mergeFilters(rs []retrieval) map[string]Filter {
	out := map[string]Filter{}
	seen := map[string]bool{}
	for _, r := range rs {
		if !seen[r.typ] {
			seen[r.typ] = true
			out[r.typ] = r.filter
			continue
		}
		f := out[r.typ]
		if f.CodeElement != r.filter.CodeElement {
			f.CodeElement, f.Codes = "", nil
		} else if f.CodeElement != "" {
			f.Codes = unionSorted(f.Codes, r.filter.Codes)
		}
		if f.DateElement != r.filter.DateElement {
			f.DateElement, f.From, f.To = "", false, false
		} else {
			f.From = f.From && r.filter.From
			f.To = f.To && r.filter.To
		}
		out[r.typ] = f
	}
	return out
}

func unionSorted(a, b []string) []string {
	out := append(append([]string{}, a...), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

// errAt formats an error for a file and the line and column of an
// expression in it.
func errAt(file string, line, col int, format string, args ...any) error {
	return fmt.Errorf("%s:%d:%d: %s", file, line, col, fmt.Sprintf(format, args...))
}
