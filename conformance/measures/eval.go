package measures

import (
	"encoding/json"
	"strings"
)

// Subject is one patient's MHP record as the criteria see it: the Patient
// and the resources of its compartment, each decoded from JSON with
// encoding/json (objects as map[string]any). It is read, never changed.
type Subject struct {
	// Patient is the MHP Patient.
	Patient map[string]any
	// Resources are the patient's other MHP resources by type.
	Resources map[string][]map[string]any
}

// env is what one evaluation needs besides the subject.
type env struct {
	subj   *Subject
	consts map[string]value
	sets   map[string]*ValueSet
}

// value is a FHIRPath collection: items are map[string]any (elements and
// resources), string, float64, bool, date or quantity.
type value []any

func (e *env) eval(n *node, focus value) value {
	switch n.op {
	case nLiteral:
		return value{n.lit}
	case nEmpty:
		return nil
	case nConst:
		return e.consts[n.name]
	case nThis:
		return focus
	case nRetrieve:
		if n.name == "Patient" {
			return value{e.subj.Patient}
		}
		list := e.subj.Resources[n.name]
		out := make(value, len(list))
		for i, r := range list {
			out[i] = r
		}
		return out
	case nIdent:
		return member(focus, n.name)
	case nPath:
		return member(e.eval(n.args[0], focus), n.name)
	case nCall:
		in := focus
		if n.args[0] != nil {
			in = e.eval(n.args[0], focus)
		}
		return e.call(n, in)
	case nBinary:
		return e.binary(n, focus)
	}
	return nil
}

// member navigates to a child element of every item. A choice element
// (onset[x]) is found by its name without the type suffix.
func member(in value, name string) value {
	var out value
	for _, it := range in {
		m, ok := it.(map[string]any)
		if !ok {
			continue
		}
		v, ok := m[name]
		if !ok {
			for k, x := range m {
				if len(k) > len(name) && strings.HasPrefix(k, name) && k[len(name)] >= 'A' && k[len(name)] <= 'Z' {
					v, ok = x, true
					break
				}
			}
		}
		if !ok {
			continue
		}
		out = appendItem(out, v)
	}
	return out
}

func appendItem(out value, v any) value {
	switch x := v.(type) {
	case []any:
		for _, y := range x {
			out = appendItem(out, y)
		}
	case json.Number:
		f, err := x.Float64()
		if err == nil {
			out = append(out, f)
		}
	case nil:
	default:
		out = append(out, x)
	}
	return out
}

func (e *env) call(n *node, in value) value {
	switch n.name {
	case "where":
		var out value
		for _, it := range in {
			if truth(e.eval(n.args[1], value{it})) == 1 {
				out = append(out, it)
			}
		}
		return out
	case "exists":
		if len(n.args) == 2 {
			for _, it := range in {
				if truth(e.eval(n.args[1], value{it})) == 1 {
					return value{true}
				}
			}
			return value{false}
		}
		return value{len(in) > 0}
	case "empty":
		return value{len(in) == 0}
	case "count":
		return value{float64(len(in))}
	case "first":
		if len(in) == 0 {
			return nil
		}
		return in[:1]
	case "not":
		switch truth(in) {
		case 1:
			return value{false}
		case 0:
			return value{true}
		}
		return nil
	case "memberOf":
		vs := e.sets[n.args[1].lit.(string)]
		if len(in) == 0 {
			return nil
		}
		for _, it := range in {
			if vs.holds(it) {
				return value{true}
			}
		}
		return value{false}
	}
	return nil
}

// truth reads a collection as a boolean: 1 true, 0 false, -1 empty.
func truth(v value) int {
	if len(v) != 1 {
		if len(v) == 0 {
			return -1
		}
		// A non-empty collection of non-booleans is true, as FHIRPath's
		// singleton evaluation of collections says for where() filters.
		return 1
	}
	if b, ok := v[0].(bool); ok {
		if b {
			return 1
		}
		return 0
	}
	return 1
}

func (e *env) binary(n *node, focus value) value {
	switch n.name {
	case "and":
		l := truth(e.eval(n.args[0], focus))
		if l == 0 {
			return value{false}
		}
		r := truth(e.eval(n.args[1], focus))
		switch {
		case r == 0:
			return value{false}
		case l == 1 && r == 1:
			return value{true}
		}
		return nil
	case "or":
		l := truth(e.eval(n.args[0], focus))
		if l == 1 {
			return value{true}
		}
		r := truth(e.eval(n.args[1], focus))
		switch {
		case r == 1:
			return value{true}
		case l == 0 && r == 0:
			return value{false}
		}
		return nil
	}
	l := e.eval(n.args[0], focus)
	r := e.eval(n.args[1], focus)
	switch n.name {
	case "|":
		out := append(value{}, l...)
		for _, x := range r {
			if !containsItem(out, x) {
				out = append(out, x)
			}
		}
		return out
	case "in":
		if len(l) != 1 {
			return nil
		}
		return value{containsItem(r, l[0])}
	case "contains":
		if len(r) != 1 {
			return nil
		}
		return value{containsItem(l, r[0])}
	}
	if len(l) != 1 || len(r) != 1 {
		return nil
	}
	a, b := l[0], r[0]
	switch n.name {
	case "+", "-":
		sign := 1
		if n.name == "-" {
			sign = -1
		}
		if q, ok := b.(quantity); ok {
			if d, ok := asDate(a); ok {
				return value{d.add(q, sign)}
			}
			return nil
		}
		x, ok1 := a.(float64)
		y, ok2 := b.(float64)
		if ok1 && ok2 {
			return value{x + float64(sign)*y}
		}
		return nil
	case "=":
		c, ok := compareItems(a, b)
		if !ok {
			return value{false}
		}
		return value{c == 0}
	case "!=":
		c, ok := compareItems(a, b)
		if !ok {
			return value{true}
		}
		return value{c != 0}
	}
	c, ok := compareItems(a, b)
	if !ok {
		return nil
	}
	switch n.name {
	case "<":
		return value{c < 0}
	case "<=":
		return value{c <= 0}
	case ">":
		return value{c > 0}
	case ">=":
		return value{c >= 0}
	}
	return nil
}

func containsItem(list value, x any) bool {
	for _, y := range list {
		if c, ok := compareItems(x, y); ok && c == 0 {
			return true
		}
	}
	return false
}

// asDate reads a date value or a string holding a FHIR date or dateTime.
func asDate(v any) (date, bool) {
	switch x := v.(type) {
	case date:
		return x, true
	case string:
		return parseDate(x)
	}
	return date{}, false
}

// compareItems orders two items of comparable kinds.
func compareItems(a, b any) (int, bool) {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		if !ok {
			return 0, false
		}
		switch {
		case x < y:
			return -1, true
		case x > y:
			return 1, true
		}
		return 0, true
	case bool:
		y, ok := b.(bool)
		if !ok {
			return 0, false
		}
		if x == y {
			return 0, true
		}
		return 1, true
	case string:
		if y, ok := b.(string); ok {
			return strings.Compare(x, y), true
		}
	}
	da, ok1 := asDate(a)
	db, ok2 := asDate(b)
	if ok1 && ok2 {
		_, aIsDate := a.(date)
		_, bIsDate := b.(date)
		if aIsDate || bIsDate {
			return da.compare(db), true
		}
	}
	return 0, false
}
