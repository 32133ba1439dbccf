package authz

import (
	"errors"
	"fmt"
	"strings"
)

// ErrPath: an obligation names an element path Apply cannot read.
//
// Redact paths name elements from the resource type down, dot separated:
// "Patient.address", "Condition.note". "extension('url')" names the
// extensions with that url, as in FHIRPath. A step may name only some
// repetitions with a filter on one of their fields: "[field=value]"
// matches those whose field equals value, "[field!=value]" those whose
// field differs; "Patient.identifier[system!=https://...]" removes every
// identifier but one kind.
var ErrPath = errors.New("invalid element path")

type pathStep struct {
	name   string
	field  string // filter field, "" for none
	value  string
	negate bool
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
