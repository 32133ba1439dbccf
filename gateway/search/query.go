package search

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/migrant-health/mhg/conformance/r4"
)

// Errors callers branch on. Parse wraps them with a message that names the
// parameter, never its value.
var (
	// ErrUnknown: the type has no such parameter (lenient handling may
	// ignore it).
	ErrUnknown = errors.New("unknown search parameter")
	// ErrUnsupported: a known parameter with a modifier or form the
	// gateway does not evaluate (always refused: FHIR says a server must
	// reject modifiers it does not support).
	ErrUnsupported = errors.New("unsupported search")
	// ErrInvalid: a value that is not what the parameter's type reads.
	ErrInvalid = errors.New("invalid search value")
)

// MaxValues bounds the OR values of one parameter and the criteria of one
// query, so a request's cost is bounded.
const MaxValues = 32

// Query is the parsed criteria and sort order of one search on one type.
// The zero Query of a type matches everything, in source order.
type Query struct {
	// Type is the resource type searched.
	Type     string
	criteria []criterion
	sortKeys []sortKey
}

// criterion is one parameter occurrence: its values are ORed, and the
// criteria of a Query are ANDed.
type criterion struct {
	param  Param
	not    bool
	text   bool
	tokens []token
	dates  []dateValue
}

type token struct {
	system, code string
	hasSystem    bool
}

// New starts a Query on resourceType.
func New(resourceType string) *Query { return &Query{Type: resourceType} }

// Empty reports whether the query neither selects nor sorts.
func (q *Query) Empty() bool { return q == nil || (len(q.criteria) == 0 && len(q.sortKeys) == 0) }

// Parse adds one search parameter (name, optional modifier, the raw value
// as it came in the query string, escaped) to the query. Repeating a
// parameter ANDs it; a comma-separated value ORs.
func (q *Query) Parse(name, modifier, value string) error {
	p, ok := Lookup(q.Type, name)
	if !ok {
		return fmt.Errorf("%w %s for %s", ErrUnknown, name, q.Type)
	}
	if len(q.criteria) >= MaxValues {
		return fmt.Errorf("%w: more than %d criteria", ErrUnsupported, MaxValues)
	}
	c := criterion{param: p}
	switch modifier {
	case "":
	case "not":
		if p.Kind != Token {
			return fmt.Errorf("%w: modifier :%s on %s", ErrUnsupported, modifier, name)
		}
		c.not = true
	case "text":
		if p.Kind != Token || p.codeOnly {
			return fmt.Errorf("%w: modifier :%s on %s", ErrUnsupported, modifier, name)
		}
		c.text = true
	default:
		return fmt.Errorf("%w: modifier :%s on %s", ErrUnsupported, modifier, name)
	}
	if value == "" {
		return fmt.Errorf("%w: %s has no value", ErrInvalid, name)
	}
	if len(value) > r4.MaxSearchValue {
		return fmt.Errorf("%w: %s is longer than %d bytes", ErrInvalid, name, r4.MaxSearchValue)
	}
	parts := r4.SplitEscaped(value, ',')
	if len(parts) > MaxValues {
		return fmt.Errorf("%w: %s has more than %d values", ErrUnsupported, name, MaxValues)
	}
	for _, v := range parts {
		switch {
		case c.text:
			if v == "" {
				return fmt.Errorf("%w: %s has an empty value", ErrInvalid, name)
			}
			c.tokens = append(c.tokens, token{code: strings.ToLower(r4.Unescape(v))})
		case p.Kind == Token:
			if err := r4.CheckToken(v); err != nil && !strings.HasSuffix(v, "|") {
				return fmt.Errorf("%w: %s %v", ErrInvalid, name, err)
			}
			sys, code, has := r4.SplitToken(v)
			if code == "" && (!has || sys == "") {
				return fmt.Errorf("%w: %s has an empty value", ErrInvalid, name)
			}
			c.tokens = append(c.tokens, token{system: sys, code: code, hasSystem: has})
		case p.Kind == Date:
			d, err := parseDateValue(v)
			if err != nil {
				return fmt.Errorf("%w: %s %v", ErrInvalid, name, err)
			}
			c.dates = append(c.dates, d)
		}
	}
	q.criteria = append(q.criteria, c)
	return nil
}

// ParseSort reads a _sort value: comma-separated date parameters of the
// type, each optionally prefixed with '-' for descending.
func (q *Query) ParseSort(value string) error {
	if value == "" {
		return fmt.Errorf("%w: _sort has no value", ErrInvalid)
	}
	keys := strings.Split(value, ",")
	if len(keys) > 4 {
		return fmt.Errorf("%w: _sort names more than 4 parameters", ErrUnsupported)
	}
	allowed := SortKeys(q.Type)
	var out []sortKey
	for _, k := range keys {
		desc := strings.HasPrefix(k, "-")
		name := strings.TrimPrefix(k, "-")
		p, ok := Lookup(q.Type, name)
		if !ok || !slices.Contains(allowed, name) {
			return fmt.Errorf("%w: _sort by %q on %s (sortable: %s)", ErrUnsupported, safeName(name), q.Type, strings.Join(allowed, ", "))
		}
		out = append(out, sortKey{param: p, desc: desc})
	}
	q.sortKeys = out
	return nil
}

// safeName keeps a parameter name printable when it is quoted back: names
// are not patient data, but a client could put anything there.
func safeName(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// Match reports whether resource m meets every criterion.
func (q *Query) Match(m proto.Message) bool {
	if q == nil {
		return true
	}
	for _, c := range q.criteria {
		if !c.match(m) {
			return false
		}
	}
	return true
}

func (c criterion) match(m proto.Message) bool {
	leaves := collect(m.ProtoReflect(), c.param.Paths)
	switch c.param.Kind {
	case Token:
		hit := false
		for _, t := range c.tokens {
			if c.text {
				hit = hit || slices.ContainsFunc(leaves, func(l leaf) bool { return l.matchText(t.code) })
			} else {
				hit = hit || slices.ContainsFunc(leaves, func(l leaf) bool { return l.matchToken(t) })
			}
		}
		// :not matches resources with no value too (FHIR: "the
		// negation of the search").
		return hit != c.not
	case Date:
		for _, d := range c.dates {
			for _, l := range leaves {
				if r, ok := l.dateRange(); ok && d.match(r) {
					return true
				}
			}
		}
	}
	return false
}
