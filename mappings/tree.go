package mappings

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// The engine works on the decoded JSON tree (objects as map[string]any,
// arrays as []any, numbers as json.Number so that FHIR decimals keep their
// precision). Every accessor tolerates a value of the wrong shape: the
// input is outside data and a panic is a bug.

type object = map[string]any

func decodeObject(b []byte) (object, error) {
	if v, err := readTree(b); err == nil {
		if o, ok := v.(object); ok {
			return o, nil
		}
	}
	// Not read, or not an object: encoding/json says why.
	return decodeObjectStd(b)
}

// decodeObjectStd is decodeObject by encoding/json alone.
func decodeObjectStd(b []byte) (object, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the JSON value")
	}
	o, ok := v.(object)
	if !ok {
		return nil, errors.New("not a JSON object")
	}
	return o, nil
}

func encodeObject(o object) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Narrative XHTML would otherwise come out as \u003cdiv\u003e.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(o); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// emit finishes an output: its bytes, or its tree when opts.Tree asks for
// it.
func emit(o object, opts Options) ([]byte, object, error) {
	if opts.Tree {
		return nil, o, nil
	}
	b, err := encodeObject(o)
	return b, nil, err
}

func getObj(o object, k string) object {
	v, _ := o[k].(object)
	return v
}

func getArr(o object, k string) []any {
	v, _ := o[k].([]any)
	return v
}

func getStr(o object, k string) string {
	v, _ := o[k].(string)
	return v
}

// objects returns the objects of a value that is an object or an array of
// objects (FHIR JSON repeats elements as arrays).
func objects(v any) []object {
	switch x := v.(type) {
	case object:
		return []object{x}
	case []any:
		out := make([]object, 0, len(x))
		for _, e := range x {
			if o, ok := e.(object); ok {
				out = append(out, o)
			}
		}
		return out
	}
	return nil
}

// deepCopy copies a JSON tree.
func deepCopy(v any) any {
	switch x := v.(type) {
	case object:
		c := make(object, len(x))
		for k, e := range x {
			c[k] = deepCopy(e)
		}
		return c
	case []any:
		c := make([]any, len(x))
		for i, e := range x {
			c[i] = deepCopy(e)
		}
		return c
	}
	return v
}

// prune removes empty objects and arrays, and primitive-extension arrays
// ("_given") that hold only nulls, which FHIR JSON does not allow. It
// reports whether v itself is now empty. In a "_x" array an emptied slot
// becomes null, so that it still lines up with the values of "x".
func prune(v any) (any, bool) { return pruneSlots(v, false) }

func pruneSlots(v any, slots bool) (any, bool) {
	switch x := v.(type) {
	case object:
		for k, e := range x {
			ne, empty := pruneSlots(e, strings.HasPrefix(k, "_"))
			if empty {
				delete(x, k)
				continue
			}
			x[k] = ne
		}
		return x, len(x) == 0
	case []any:
		out := x[:0]
		nonNull := 0
		for _, e := range x {
			if e == nil {
				if slots {
					out = append(out, nil)
				}
				continue
			}
			ne, empty := pruneSlots(e, false)
			if empty {
				if slots {
					out = append(out, nil)
				}
				continue
			}
			out = append(out, ne)
			nonNull++
		}
		return out, nonNull == 0
	case nil:
		return nil, true
	}
	return v, false
}

// segment is one step of a spec path: a JSON key, optionally filtered to
// the extensions with one url ("extension(http://...)").
type segment struct {
	key, url string
}

// fhirPath is a compiled spec path such as
// "Patient.extension(http://hl7.org/fhir/StructureDefinition/patient-citizenship).extension(code).valueCodeableConcept".
// Arrays are walked implicitly, as FHIRPath does.
type fhirPath struct {
	text     string
	resource string
	segs     []segment
}

func parsePath(s string) (fhirPath, error) {
	p := fhirPath{text: s}
	var parts []string
	depth, start := 0, 0
	for i, r := range s {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
			if depth < 0 {
				return p, fmt.Errorf("path %q: unbalanced parenthesis", s)
			}
		case '.':
			if depth == 0 {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	if depth != 0 {
		return p, fmt.Errorf("path %q: unbalanced parenthesis", s)
	}
	parts = append(parts, s[start:])
	if len(parts) < 2 {
		return p, fmt.Errorf("path %q: want ResourceType.element", s)
	}
	p.resource = parts[0]
	if !isResourceTypeName(p.resource) {
		return p, fmt.Errorf("path %q: %q is not a resource type name", s, p.resource)
	}
	for _, part := range parts[1:] {
		seg := segment{key: part}
		if k, rest, ok := strings.Cut(part, "("); ok {
			url := strings.TrimSuffix(rest, ")")
			if k != "extension" || url == "" || !strings.HasSuffix(rest, ")") {
				return p, fmt.Errorf("path %q: only extension(url) may filter", s)
			}
			seg = segment{key: k, url: url}
		}
		if seg.key == "" {
			return p, fmt.Errorf("path %q: empty step", s)
		}
		p.segs = append(p.segs, seg)
	}
	return p, nil
}

// objects evaluates the path on a resource and returns the objects it
// reaches.
func (p fhirPath) objects(root object) []object {
	cur := []object{root}
	for _, seg := range p.segs {
		var next []object
		for _, o := range cur {
			for _, c := range objects(o[seg.key]) {
				if seg.url != "" && getStr(c, "url") != seg.url {
					continue
				}
				next = append(next, c)
			}
		}
		cur = next
		if len(cur) == 0 {
			return nil
		}
	}
	return cur
}

func isResourceTypeName(s string) bool {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z') {
			return false
		}
	}
	return true
}
