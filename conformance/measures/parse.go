package measures

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// The criteria language is a subset of FHIRPath (README.md lists it). This
// file turns an expression into a tree; compile.go checks the tree against
// what the evaluator knows (functions, value sets, constants) and eval.go
// runs it.

// SyntaxError is an error at a position of one expression. Line and Column
// are 1-based within the expression; Load adds the file and the line of the
// expression in it.
type SyntaxError struct {
	Line, Column int
	Msg          string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("%d:%d: %s", e.Line, e.Column, e.Msg) }

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tString
	tNumber
	tDate
	tConst // %name
	tOp    // punctuation and operators
)

type token struct {
	kind tokKind
	text string
	pos  int // byte offset in the expression
}

func lex(src string) ([]token, error) {
	var out []token
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '/' && i+1 < len(src) && src[i+1] == '/':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '\'':
			j := i + 1
			var b strings.Builder
			for ; j < len(src) && src[j] != '\''; j++ {
				if src[j] == '\\' && j+1 < len(src) {
					j++
				}
				b.WriteByte(src[j])
			}
			if j >= len(src) {
				return nil, posErr(src, i, "string not closed")
			}
			out = append(out, token{tString, b.String(), i})
			i = j + 1
		case c == '@':
			j := i + 1
			for j < len(src) && (isDigit(src[j]) || src[j] == '-' || src[j] == 'T' || src[j] == ':' || src[j] == '.' || src[j] == '+' || src[j] == 'Z') {
				j++
			}
			if _, ok := parseDate(src[i+1 : j]); !ok {
				return nil, posErr(src, i, "date literal %q is not a FHIR date", src[i:j])
			}
			out = append(out, token{tDate, src[i+1 : j], i})
			i = j
		case c == '%':
			j := i + 1
			for j < len(src) && isIdentChar(src[j]) {
				j++
			}
			if j == i+1 {
				return nil, posErr(src, i, "'%%' must name a constant")
			}
			out = append(out, token{tConst, src[i+1 : j], i})
			i = j
		case c == '$':
			j := i + 1
			for j < len(src) && isIdentChar(src[j]) {
				j++
			}
			out = append(out, token{tIdent, src[i:j], i})
			i = j
		case isDigit(c):
			j := i
			for j < len(src) && (isDigit(src[j]) || src[j] == '.') {
				j++
			}
			out = append(out, token{tNumber, src[i:j], i})
			i = j
		case isIdentStart(c):
			j := i
			for j < len(src) && isIdentChar(src[j]) {
				j++
			}
			out = append(out, token{tIdent, src[i:j], i})
			i = j
		default:
			two := ""
			if i+1 < len(src) {
				two = src[i : i+2]
			}
			switch two {
			case "<=", ">=", "!=":
				out = append(out, token{tOp, two, i})
				i += 2
				continue
			}
			if strings.IndexByte("().,=<>|+-", c) >= 0 {
				out = append(out, token{tOp, string(c), i})
				i++
				continue
			}
			return nil, posErr(src, i, "unexpected character %q", rune(c))
		}
	}
	out = append(out, token{tEOF, "", len(src)})
	return out, nil
}

func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isIdentStart(c byte) bool { return c == '_' || unicode.IsLetter(rune(c)) }
func isIdentChar(c byte) bool  { return isIdentStart(c) || isDigit(c) }

func posErr(src string, pos int, format string, args ...any) *SyntaxError {
	line, col := 1, 1
	for i := 0; i < pos && i < len(src); i++ {
		if src[i] == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return &SyntaxError{Line: line, Column: col, Msg: fmt.Sprintf(format, args...)}
}

// node is one element of an expression tree.
type node struct {
	op   string // see the constants below
	pos  int
	name string  // identifier, function, constant or operator
	lit  any     // literal value
	args []*node // operands; for "." the focus is args[0]
}

// Node kinds.
const (
	nLiteral  = "literal"  // lit
	nConst    = "const"    // %name
	nThis     = "this"     // $this
	nIdent    = "ident"    // a member of the focus (name)
	nRetrieve = "retrieve" // a leading resource type: the patient's resources of that type
	nPath     = "path"     // args[0].name
	nCall     = "call"     // args[0].name(args[1:]...); args[0] nil at the start
	nBinary   = "binary"   // args[0] name args[1]
	nEmpty    = "empty"    // {}
)

type parser struct {
	src  string
	toks []token
	i    int
	// depth counts function arguments being parsed: a resource type at the
	// start of an argument is a member of the focus, not a retrieve.
	depth int
}

func parse(src string) (*node, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{src: src, toks: toks}
	n, err := p.expr(0)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, posErr(src, t.pos, "unexpected %q after the end of the expression", t.text)
	}
	return n, nil
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token { t := p.toks[p.i]; p.i++; return t }

// Binary operators by precedence, lowest first (FHIRPath's table).
var precedence = [][]string{
	{"or"},
	{"and"},
	{"in", "contains"},
	{"=", "!="},
	{"<", "<=", ">", ">="},
	{"|"},
	{"+", "-"},
}

func (p *parser) isOp(level int) (string, bool) {
	t := p.peek()
	if t.kind != tOp && t.kind != tIdent {
		return "", false
	}
	for _, op := range precedence[level] {
		if t.text == op {
			return op, true
		}
	}
	return "", false
}

func (p *parser) expr(level int) (*node, error) {
	if level == len(precedence) {
		return p.postfix()
	}
	left, err := p.expr(level + 1)
	if err != nil {
		return nil, err
	}
	for {
		op, ok := p.isOp(level)
		if !ok {
			return left, nil
		}
		t := p.next()
		right, err := p.expr(level + 1)
		if err != nil {
			return nil, err
		}
		left = &node{op: nBinary, pos: t.pos, name: op, args: []*node{left, right}}
	}
}

func (p *parser) postfix() (*node, error) {
	n, err := p.term()
	if err != nil {
		return nil, err
	}
	for p.peek().kind == tOp && p.peek().text == "." {
		p.next()
		t := p.next()
		if t.kind != tIdent {
			return nil, posErr(p.src, t.pos, "want a name after '.'")
		}
		if p.peek().kind == tOp && p.peek().text == "(" {
			call, err := p.call(t)
			if err != nil {
				return nil, err
			}
			call.args[0] = n
			n = call
			continue
		}
		n = &node{op: nPath, pos: t.pos, name: t.text, args: []*node{n}}
	}
	return n, nil
}

// call parses name(args); args[0] is left for the focus.
func (p *parser) call(name token) (*node, error) {
	p.next() // (
	n := &node{op: nCall, pos: name.pos, name: name.text, args: []*node{nil}}
	p.depth++
	defer func() { p.depth-- }()
	if p.peek().kind == tOp && p.peek().text == ")" {
		p.next()
		return n, nil
	}
	for {
		a, err := p.expr(0)
		if err != nil {
			return nil, err
		}
		n.args = append(n.args, a)
		t := p.next()
		if t.kind == tOp && t.text == ")" {
			return n, nil
		}
		if t.kind != tOp || t.text != "," {
			return nil, posErr(p.src, t.pos, "want ',' or ')' in the arguments of %s()", name.text)
		}
	}
}

func (p *parser) term() (*node, error) {
	t := p.next()
	switch t.kind {
	case tString:
		return &node{op: nLiteral, pos: t.pos, lit: t.text}, nil
	case tDate:
		d, _ := parseDate(t.text)
		return &node{op: nLiteral, pos: t.pos, lit: d}, nil
	case tConst:
		return &node{op: nConst, pos: t.pos, name: t.text}, nil
	case tNumber:
		v, err := strconv.ParseFloat(t.text, 64)
		if err != nil {
			return nil, posErr(p.src, t.pos, "number %q is not readable", t.text)
		}
		// A number followed by a calendar unit is a quantity: 2 years.
		if u := p.peek(); u.kind == tIdent {
			if unit, ok := calendarUnits[u.text]; ok {
				p.next()
				if v != float64(int(v)) {
					return nil, posErr(p.src, t.pos, "a calendar duration must be a whole number")
				}
				return &node{op: nLiteral, pos: t.pos, lit: quantity{n: int(v), unit: unit}}, nil
			}
		}
		return &node{op: nLiteral, pos: t.pos, lit: v}, nil
	case tIdent:
		switch t.text {
		case "true", "false":
			return &node{op: nLiteral, pos: t.pos, lit: t.text == "true"}, nil
		case "$this":
			return &node{op: nThis, pos: t.pos}, nil
		}
		if strings.HasPrefix(t.text, "$") {
			return nil, posErr(p.src, t.pos, "unknown variable %s", t.text)
		}
		if p.peek().kind == tOp && p.peek().text == "(" {
			return p.call(t)
		}
		if p.depth == 0 && t.text[0] >= 'A' && t.text[0] <= 'Z' {
			return &node{op: nRetrieve, pos: t.pos, name: t.text}, nil
		}
		return &node{op: nIdent, pos: t.pos, name: t.text}, nil
	case tOp:
		switch t.text {
		case "(":
			depth := p.depth
			n, err := p.expr(0)
			if err != nil {
				return nil, err
			}
			p.depth = depth
			if c := p.next(); c.kind != tOp || c.text != ")" {
				return nil, posErr(p.src, c.pos, "want ')'")
			}
			return n, nil
		case "-":
			n, err := p.term()
			if err != nil {
				return nil, err
			}
			if n.op == nLiteral {
				if f, ok := n.lit.(float64); ok {
					n.lit = -f
					return n, nil
				}
			}
			return nil, posErr(p.src, t.pos, "unary '-' applies to numbers only")
		}
	case tEOF:
		return nil, posErr(p.src, t.pos, "the expression ends too early")
	}
	return nil, posErr(p.src, t.pos, "unexpected %q", t.text)
}

// calendarUnits are the FHIRPath calendar duration keywords the language
// reads after a number.
var calendarUnits = map[string]string{
	"year": "year", "years": "year", "month": "month", "months": "month",
	"week": "week", "weeks": "week", "day": "day", "days": "day",
}

type quantity struct {
	n    int
	unit string
}
