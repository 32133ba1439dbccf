package mappings

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// errSyntax is what the tree reader says about input it does not read;
// decodeObject then asks encoding/json, whose error is the one reported.
var errSyntax = errors.New("json syntax")

// readTree decodes one JSON document into the tree encoding/json gives
// with UseNumber (objects as map[string]any, the last of repeated keys
// winning; arrays as []any; numbers as json.Number; invalid UTF-8 and lone
// surrogates in strings as U+FFFD), several times faster: mapping a
// resource spent most of its time in encoding/json's reflection. Anything
// else than one value between optional white space is errSyntax.
func readTree(b []byte) (any, error) {
	r := treeReader{b: b}
	v, err := r.value(0)
	if err != nil {
		return nil, err
	}
	r.space()
	if r.i != len(r.b) {
		return nil, errSyntax
	}
	return v, nil
}

// maxTreeDepth bounds nesting as encoding/json does.
const maxTreeDepth = 10000

type treeReader struct {
	b []byte
	i int
	// modifier: skip passed a member named modifierExtension, or one
	// whose name has an escape.
	modifier bool
}

func (r *treeReader) space() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

func (r *treeReader) value(depth int) (any, error) {
	if depth > maxTreeDepth {
		return nil, errSyntax
	}
	r.space()
	if r.i >= len(r.b) {
		return nil, errSyntax
	}
	switch c := r.b[r.i]; {
	case c == '{':
		r.i++
		m := map[string]any{}
		r.space()
		if r.i < len(r.b) && r.b[r.i] == '}' {
			r.i++
			return m, nil
		}
		for {
			r.space()
			if r.i >= len(r.b) || r.b[r.i] != '"' {
				return nil, errSyntax
			}
			k, err := r.str()
			if err != nil {
				return nil, err
			}
			r.space()
			if r.i >= len(r.b) || r.b[r.i] != ':' {
				return nil, errSyntax
			}
			r.i++
			v, err := r.value(depth + 1)
			if err != nil {
				return nil, err
			}
			m[k] = v
			r.space()
			if r.i >= len(r.b) {
				return nil, errSyntax
			}
			switch r.b[r.i] {
			case ',':
				r.i++
			case '}':
				r.i++
				return m, nil
			default:
				return nil, errSyntax
			}
		}
	case c == '[':
		r.i++
		a := []any{}
		r.space()
		if r.i < len(r.b) && r.b[r.i] == ']' {
			r.i++
			return a, nil
		}
		for {
			v, err := r.value(depth + 1)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
			r.space()
			if r.i >= len(r.b) {
				return nil, errSyntax
			}
			switch r.b[r.i] {
			case ',':
				r.i++
			case ']':
				r.i++
				return a, nil
			default:
				return nil, errSyntax
			}
		}
	case c == '"':
		return r.str()
	case c == 't':
		return r.literal("true", true)
	case c == 'f':
		return r.literal("false", false)
	case c == 'n':
		return r.literal("null", nil)
	case c == '-' || c >= '0' && c <= '9':
		return r.number()
	}
	return nil, errSyntax
}

func (r *treeReader) literal(word string, v any) (any, error) {
	if len(r.b)-r.i < len(word) || string(r.b[r.i:r.i+len(word)]) != word {
		return nil, errSyntax
	}
	r.i += len(word)
	return v, nil
}

// number reads a number as the JSON grammar has it.
func (r *treeReader) number() (any, error) {
	start := r.i
	digits := func() int {
		n := 0
		for r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9' {
			r.i++
			n++
		}
		return n
	}
	if r.b[r.i] == '-' {
		r.i++
	}
	if r.i < len(r.b) && r.b[r.i] == '0' {
		r.i++
	} else if digits() == 0 {
		return nil, errSyntax
	}
	if r.i < len(r.b) && r.b[r.i] == '.' {
		r.i++
		if digits() == 0 {
			return nil, errSyntax
		}
	}
	if r.i < len(r.b) && (r.b[r.i] == 'e' || r.b[r.i] == 'E') {
		r.i++
		if r.i < len(r.b) && (r.b[r.i] == '+' || r.b[r.i] == '-') {
			r.i++
		}
		if digits() == 0 {
			return nil, errSyntax
		}
	}
	return json.Number(r.b[start:r.i]), nil
}

// str reads a string; r.b[r.i] is its opening quote.
func (r *treeReader) str() (string, error) {
	r.i++
	start := r.i
	// The common case: no escape, ASCII or valid UTF-8, no control byte.
	for r.i < len(r.b) {
		c := r.b[r.i]
		if c == '"' {
			s := r.b[start:r.i]
			r.i++
			if utf8.Valid(s) {
				return string(s), nil
			}
			return string([]rune(string(s))), nil // invalid bytes become U+FFFD
		}
		if c == '\\' || c < 0x20 {
			break
		}
		r.i++
	}
	out := append([]byte(nil), r.b[start:r.i]...)
	for r.i < len(r.b) {
		c := r.b[r.i]
		switch {
		case c == '"':
			r.i++
			if !utf8.Valid(out) {
				return string([]rune(string(out))), nil
			}
			return string(out), nil
		case c < 0x20:
			return "", errSyntax
		case c != '\\':
			out = append(out, c)
			r.i++
			continue
		}
		r.i++
		if r.i >= len(r.b) {
			return "", errSyntax
		}
		e := r.b[r.i]
		r.i++
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			c1, ok := r.hex4()
			if !ok {
				return "", errSyntax
			}
			if utf16.IsSurrogate(c1) {
				// A pair makes one rune; anything else is U+FFFD.
				if r.i+1 < len(r.b) && r.b[r.i] == '\\' && r.b[r.i+1] == 'u' {
					save := r.i
					r.i += 2
					c2, ok := r.hex4()
					if !ok {
						return "", errSyntax
					}
					if dec := utf16.DecodeRune(c1, c2); dec != utf8.RuneError {
						out = utf8.AppendRune(out, dec)
						continue
					}
					r.i = save
				}
				c1 = utf8.RuneError
			}
			out = utf8.AppendRune(out, c1)
		default:
			return "", errSyntax
		}
	}
	return "", errSyntax
}

func (r *treeReader) hex4() (rune, bool) {
	if len(r.b)-r.i < 4 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(r.b[r.i:r.i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	r.i += 4
	return rune(v), true
}

// readFields decodes a JSON object as readTree does, but only the members
// keep asks for: the values of the others are checked against the JSON
// grammar as readTree checks them and not built. A skipped value with a
// member named modifierExtension, or a member name with an escape (which
// could spell it), is decoded after all: a modifier extension the profile
// does not know fails the mapping, wherever it sits. Anything readTree
// would not read is errSyntax.
func readFields(b []byte, keep func(string) bool) (object, error) {
	r := treeReader{b: b}
	r.space()
	if r.i >= len(r.b) || r.b[r.i] != '{' {
		return nil, errSyntax
	}
	r.i++
	m := object{}
	r.space()
	if r.i < len(r.b) && r.b[r.i] == '}' {
		r.i++
	} else {
		for {
			r.space()
			if r.i >= len(r.b) || r.b[r.i] != '"' {
				return nil, errSyntax
			}
			k, err := r.str()
			if err != nil {
				return nil, err
			}
			r.space()
			if r.i >= len(r.b) || r.b[r.i] != ':' {
				return nil, errSyntax
			}
			r.i++
			if keep(k) {
				v, err := r.value(1)
				if err != nil {
					return nil, err
				}
				m[k] = v
			} else {
				start := r.i
				r.modifier = false
				if err := r.skip(1); err != nil {
					return nil, err
				}
				if r.modifier {
					r.i = start
					v, err := r.value(1)
					if err != nil {
						return nil, err
					}
					m[k] = v
				} else {
					// The last of repeated keys wins, kept or not.
					delete(m, k)
				}
			}
			r.space()
			if r.i >= len(r.b) {
				return nil, errSyntax
			}
			if r.b[r.i] == '}' {
				r.i++
				break
			}
			if r.b[r.i] != ',' {
				return nil, errSyntax
			}
			r.i++
		}
	}
	r.space()
	if r.i != len(r.b) {
		return nil, errSyntax
	}
	return m, nil
}

// skip passes over one value, failing where value would.
func (r *treeReader) skip(depth int) error {
	if depth > maxTreeDepth {
		return errSyntax
	}
	r.space()
	if r.i >= len(r.b) {
		return errSyntax
	}
	switch c := r.b[r.i]; {
	case c == '{' || c == '[':
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		r.i++
		r.space()
		if r.i < len(r.b) && r.b[r.i] == end {
			r.i++
			return nil
		}
		for {
			if c == '{' {
				r.space()
				if r.i >= len(r.b) || r.b[r.i] != '"' {
					return errSyntax
				}
				start := r.i
				if err := r.skipStr(); err != nil {
					return err
				}
				if name := r.b[start+1 : r.i-1]; string(name) == "modifierExtension" || bytes.IndexByte(name, '\\') >= 0 {
					r.modifier = true
				}
				r.space()
				if r.i >= len(r.b) || r.b[r.i] != ':' {
					return errSyntax
				}
				r.i++
			}
			if err := r.skip(depth + 1); err != nil {
				return err
			}
			r.space()
			if r.i >= len(r.b) {
				return errSyntax
			}
			switch r.b[r.i] {
			case ',':
				r.i++
			case end:
				r.i++
				return nil
			default:
				return errSyntax
			}
		}
	case c == '"':
		return r.skipStr()
	}
	_, err := r.value(depth)
	return err
}

// skipStr passes over a string, failing where str would.
func (r *treeReader) skipStr() error {
	r.i++
	for r.i < len(r.b) {
		c := r.b[r.i]
		if c >= 0x20 && c != '"' && c != '\\' {
			r.i++
			continue
		}
		switch {
		case c == '"':
			r.i++
			return nil
		case c < 0x20:
			return errSyntax
		}
		r.i++
		if r.i >= len(r.b) {
			return errSyntax
		}
		e := r.b[r.i]
		r.i++
		switch e {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		case 'u':
			if _, ok := r.hex4(); !ok {
				return errSyntax
			}
		default:
			return errSyntax
		}
	}
	return errSyntax
}

// ReadMembers decodes the named members of a JSON object, as
// encoding/json with UseNumber decodes them into any, and checks the rest
// against the JSON grammar without building it: what a caller needs of a
// national resource before deciding whether to map it (its subject, its
// code) for a fraction of decoding it all. Names match exactly, as FHIR's
// JSON is case-sensitive. The result may hold other members too (a value
// holding a modifierExtension is decoded, see readFields); callers read
// the ones they named.
func ReadMembers(b []byte, names ...string) (map[string]any, error) {
	return readFields(b, func(k string) bool { return slices.Contains(names, k) })
}
