package narrative

import (
	"strconv"
	"strings"
)

// maxRanges bounds how many language ranges of a header are read: a
// client that sends more gets the first ones considered.
const maxRanges = 32

// Negotiate picks the narrative language for the values of an
// Accept-Language header (RFC 9110 section 12.5.4): the language with
// phrases whose best matching range has the highest weight. A range
// matches a language when its primary subtag is the language ("de-AT"
// matches de), and the range naming the language alone decides over
// regional ones; "*" matches every language not named otherwise. Weight 0
// excludes. Equal weights go to the range listed first, and a wildcard to
// the first of Languages(). Malformed ranges are skipped. Nothing
// acceptable: Default.
func Negotiate(values ...string) string {
	type match struct {
		q     int // weight in thousandths
		pos   int
		exact bool
	}
	named := map[string]match{}
	wildcard := match{q: -1}
	pos := 0
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			if pos >= maxRanges {
				break
			}
			tag, q, ok := parseRange(part)
			if !ok {
				continue
			}
			pos++
			if tag == "*" {
				if wildcard.q < 0 {
					wildcard = match{q: q, pos: pos}
				}
				continue
			}
			primary, _, _ := strings.Cut(tag, "-")
			if _, known := tables[primary]; !known {
				continue
			}
			// The range naming the language itself ("de") decides its
			// weight over a regional one ("de-CH"); otherwise the first
			// range that names it does.
			exact := tag == primary
			if prev, seen := named[primary]; !seen || (exact && !prev.exact) {
				named[primary] = match{q: q, pos: pos, exact: exact}
			}
		}
	}
	best, bestQ, bestPos := Default, 0, maxRanges+1
	for _, lang := range Languages() {
		m, ok := named[lang]
		if !ok {
			if wildcard.q < 0 {
				continue
			}
			m = wildcard
		}
		if m.q > bestQ || (m.q == bestQ && m.q > 0 && m.pos < bestPos) {
			best, bestQ, bestPos = lang, m.q, m.pos
		}
	}
	if bestQ == 0 {
		return Default
	}
	return best
}

// parseRange reads one "range;q=weight" element. The weight is returned in
// thousandths (1000 when absent).
func parseRange(s string) (tag string, q int, ok bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", 0, false
	}
	tag, params, _ := strings.Cut(s, ";")
	tag = strings.ToLower(strings.TrimSpace(tag))
	if !validRange(tag) {
		return "", 0, false
	}
	q = 1000
	for _, p := range strings.Split(params, ";") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		k, v, found := strings.Cut(p, "=")
		if !found || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		w, good := parseWeight(strings.TrimSpace(v))
		if !good {
			return "", 0, false
		}
		q = w
	}
	return tag, q, true
}

// validRange accepts "*" and 1*8ALPHA *("-" 1*8alphanum).
func validRange(tag string) bool {
	if tag == "*" {
		return true
	}
	for i, sub := range strings.Split(tag, "-") {
		if len(sub) == 0 || len(sub) > 8 {
			return false
		}
		for _, r := range sub {
			alpha := r >= 'a' && r <= 'z'
			digit := r >= '0' && r <= '9'
			if !alpha && !(digit && i > 0) {
				return false
			}
		}
	}
	return true
}

// parseWeight reads a qvalue: "0", "0.xxx" or "1", "1.000" (at most three
// decimals).
func parseWeight(v string) (int, bool) {
	whole, frac, hasFrac := strings.Cut(v, ".")
	if whole != "0" && whole != "1" {
		return 0, false
	}
	if hasFrac && (len(frac) > 3) {
		return 0, false
	}
	for _, r := range frac {
		if r < '0' || r > '9' {
			return 0, false
		}
	}
	n := 0
	if frac != "" {
		f, err := strconv.Atoi((frac + "00")[:3])
		if err != nil {
			return 0, false
		}
		n = f
	}
	if whole == "1" {
		if n != 0 {
			return 0, false
		}
		return 1000, true
	}
	return n, true
}
