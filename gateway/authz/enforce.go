package authz

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ErrPath: an obligation names an element path Enforce cannot read.
var ErrPath = errors.New("invalid element path")

// Enforce carries out the redact and label obligations of a decision on
// one resource in R4 JSON and returns the resource to release. Notify
// obligations are the caller's (they need the audit and notification
// machinery) and are ignored here.
//
// Redact paths name elements from the resource type down, dot separated:
// "Patient.address", "Condition.note". "extension('url')" names the
// extensions with that url, as in FHIRPath. A step may name only some
// repetitions with a filter on one of their fields: "[field=value]"
// matches those whose field equals value, "[field!=value]" those whose
// field differs; "Patient.identifier[system!=https://...]" removes every
// identifier but one kind. Paths for another resource type are skipped. A
// list left empty by a redaction is removed, as FHIR JSON has no empty
// lists. Label obligations add their codings to meta.security unless
// already there.
//
// The output is compact JSON with object keys in sorted order; parse it
// with the R4 codec for the canonical form.
func Enforce(resource []byte, obligations []Obligation) ([]byte, error) {
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(resource))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("enforce: %w", err)
	}
	rtype, _ := doc["resourceType"].(string)
	if rtype == "" {
		return nil, fmt.Errorf("enforce: %w: no resourceType", ErrNotAResource)
	}
	for _, o := range obligations {
		switch o.Kind {
		case ObligationRedact:
			for _, p := range o.Paths {
				steps, err := parsePath(p)
				if err != nil {
					return nil, fmt.Errorf("enforce: obligation %s: %w", o.Rule, err)
				}
				if steps[0].name != rtype {
					continue
				}
				redact(doc, steps[1:])
			}
		case ObligationLabel:
			addLabels(doc, o.Labels)
		}
	}
	return json.Marshal(doc)
}

type pathStep struct {
	name   string
	field  string // filter field, "" for none
	value  string
	negate bool
}

func (s pathStep) keeps(elem any) bool {
	if s.field == "" {
		return true
	}
	m, _ := elem.(map[string]any)
	v, _ := m[s.field].(string)
	return (v == s.value) != s.negate
}

// parsePath splits "Type.a[f=v].b" into steps. Filters and extension
// urls hold dots, so the split skips what is inside brackets and
// parentheses.
func parsePath(p string) ([]pathStep, error) {
	var steps []pathStep
	rest := p
	for rest != "" {
		var seg string
		depth := 0
		i := 0
		for ; i < len(rest); i++ {
			switch rest[i] {
			case '[', '(':
				depth++
			case ']', ')':
				depth--
			}
			if rest[i] == '.' && depth == 0 {
				break
			}
		}
		seg, rest = rest[:i], strings.TrimPrefix(rest[i:], ".")
		step, err := parseStep(seg)
		if err != nil {
			return nil, fmt.Errorf("%w %q: %v", ErrPath, p, err)
		}
		steps = append(steps, step)
	}
	if len(steps) < 2 {
		return nil, fmt.Errorf("%w %q: want Type.element", ErrPath, p)
	}
	return steps, nil
}

func parseStep(seg string) (pathStep, error) {
	if url, ok := strings.CutPrefix(seg, "extension("); ok {
		url, ok = strings.CutSuffix(url, ")")
		if !ok || len(url) < 2 || (url[0] != '\'' && url[0] != '"') || url[len(url)-1] != url[0] {
			return pathStep{}, fmt.Errorf("bad step %q: want extension('url')", seg)
		}
		return pathStep{name: "extension", field: "url", value: url[1 : len(url)-1]}, nil
	}
	name, filter, hasFilter := strings.Cut(seg, "[")
	if name == "" || strings.ContainsAny(name, "]=!*()'\"") {
		return pathStep{}, fmt.Errorf("bad step %q", seg)
	}
	step := pathStep{name: name}
	if !hasFilter {
		return step, nil
	}
	if !strings.HasSuffix(filter, "]") {
		return pathStep{}, fmt.Errorf("unclosed filter in %q", seg)
	}
	filter = strings.TrimSuffix(filter, "]")
	if f, v, ok := strings.Cut(filter, "!="); ok && !strings.Contains(f, "=") {
		step.field, step.value, step.negate = f, v, true
	} else if f, v, ok := strings.Cut(filter, "="); ok {
		step.field, step.value = f, v
	} else {
		return pathStep{}, fmt.Errorf("filter %q: want field=value or field!=value", filter)
	}
	if step.field == "" {
		return pathStep{}, fmt.Errorf("filter %q has no field", filter)
	}
	return step, nil
}

// redact removes what steps name under node.
func redact(node map[string]any, steps []pathStep) {
	step := steps[0]
	v, ok := node[step.name]
	if !ok {
		return
	}
	last := len(steps) == 1
	switch x := v.(type) {
	case []any:
		kept := x[:0]
		for _, elem := range x {
			switch {
			case !step.keeps(elem):
				kept = append(kept, elem)
			case last:
				// matched: removed
			default:
				if m, ok := elem.(map[string]any); ok {
					redact(m, steps[1:])
				}
				kept = append(kept, elem)
			}
		}
		if len(kept) == 0 {
			delete(node, step.name)
		} else {
			node[step.name] = kept
		}
	case map[string]any:
		if !step.keeps(x) {
			return
		}
		if last {
			delete(node, step.name)
			return
		}
		redact(x, steps[1:])
	default:
		if last && step.field == "" {
			delete(node, step.name)
		}
	}
	// A primitive's extensions and id live under "_name" in FHIR JSON.
	if last && step.field == "" {
		delete(node, "_"+step.name)
	}
}

func addLabels(doc map[string]any, labels []Coding) {
	if len(labels) == 0 {
		return
	}
	meta, _ := doc["meta"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		doc["meta"] = meta
	}
	security, _ := meta["security"].([]any)
	for _, l := range labels {
		present := false
		for _, s := range security {
			m, _ := s.(map[string]any)
			if m["system"] == l.System && m["code"] == l.Code {
				present = true
				break
			}
		}
		if !present {
			coding := map[string]any{"code": l.Code}
			if l.System != "" {
				coding["system"] = l.System
			}
			security = append(security, coding)
		}
	}
	meta["security"] = security
}
