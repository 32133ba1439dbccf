package source

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"

	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/gateway/match"
)

// demographics are what a Bundle's Patient searches by name, birth date
// and gender read, kept per Patient at load.
type demographics struct {
	// names are every family and given name, folded as FHIR string
	// search compares them (lower case, without diacritics).
	family, given []string
	// skeletons are the consonant skeletons of every name and name word
	// (the phonetic parameter).
	skeletons []string
	birth     match.Date
	gender    string
}

// demographicParams are the Patient search parameters a Bundle answers
// from demographics.
var demographicParams = map[string]bool{
	"family": true, "given": true, "name": true, "phonetic": true, "birthdate": true, "gender": true,
}

// foldString folds for FHIR string search: lower case, diacritics
// removed, as servers commonly compare.
func foldString(s string) string {
	t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	out, _, err := transform.String(t, s)
	if err != nil {
		out = s
	}
	return strings.ToLower(strings.TrimSpace(out))
}

// addDemographics indexes a Patient's names, birth date and gender.
func (b *Bundle) addDemographics(i int, raw []byte) {
	var p struct {
		Name []struct {
			Family string   `json:"family"`
			Given  []string `json:"given"`
		} `json:"name"`
		BirthDate string `json:"birthDate"`
		Gender    string `json:"gender"`
	}
	_ = json.Unmarshal(raw, &p)
	d := demographics{gender: p.Gender}
	d.birth, _ = match.ParseDate(p.BirthDate)
	addSkel := func(s string) {
		if sk := match.Skeleton(s); sk != "" {
			d.skeletons = append(d.skeletons, sk)
		}
		for _, w := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '-' }) {
			if sk := match.Skeleton(w); sk != "" {
				d.skeletons = append(d.skeletons, sk)
			}
		}
	}
	for _, n := range p.Name {
		if n.Family != "" {
			d.family = append(d.family, foldString(n.Family))
			addSkel(n.Family)
		}
		for _, g := range n.Given {
			d.given = append(d.given, foldString(g))
			addSkel(g)
		}
	}
	if b.demo == nil {
		b.demo = map[int]*demographics{}
		b.bySkeleton = map[string][]int{}
	}
	b.demo[i] = &d
	for _, sk := range d.skeletons {
		b.addUnique(b.bySkeleton, sk, i)
	}
}

// matchDemographic returns, in load order, the Patients matching one
// value of a demographic parameter. String parameters match the start of
// a name (FHIR string search), phonetic its consonant skeleton across
// spellings and scripts (from an index), birthdate a FHIR date with an
// optional prefix (eq, ne, gt, lt, ge, le, sa, eb, ap) against the birth
// date's range, and gender the code.
func (b *Bundle) matchDemographic(name, value string) ([]int, error) {
	if name == "phonetic" {
		sk := match.Skeleton(r4.Unescape(value))
		if sk == "" {
			return nil, fmt.Errorf("parameter phonetic: no letters: %w", ErrRejected)
		}
		return b.bySkeleton[sk], nil
	}
	test, err := demographicTest(name, value)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, i := range b.byType["Patient"] {
		if d := b.demo[i]; d != nil && test(d) {
			out = append(out, i)
		}
	}
	return out, nil
}

// scanned are the demographic parameters answered by looking at every
// Patient: Search narrows with the indexed ones first and then only tests
// what they found.
var scanned = map[string]bool{"family": true, "given": true, "name": true, "birthdate": true, "gender": true}

// filterDemographic keeps the Patients of hits matching any of the
// comma-separated alternatives of one scanned parameter.
func (b *Bundle) filterDemographic(hits []int, name, value string) ([]int, error) {
	var tests []func(*demographics) bool
	for _, alt := range r4.SplitEscaped(value, ',') {
		t, err := demographicTest(name, alt)
		if err != nil {
			return nil, err
		}
		tests = append(tests, t)
	}
	var out []int
	for _, i := range hits {
		d := b.demo[i]
		if d == nil {
			continue
		}
		for _, t := range tests {
			if t(d) {
				out = append(out, i)
				break
			}
		}
	}
	return out, nil
}

// demographicTest is the test one value of a scanned parameter puts to a
// Patient's demographics.
func demographicTest(name, value string) (func(*demographics) bool, error) {
	v := r4.Unescape(value)
	switch name {
	case "family", "given", "name":
		f := foldString(v)
		if f == "" {
			return nil, fmt.Errorf("parameter %s: empty value: %w", name, ErrRejected)
		}
		return func(d *demographics) bool {
			lists := [][]string{d.family, d.given}
			switch name {
			case "family":
				lists = lists[:1]
			case "given":
				lists = lists[1:]
			}
			for _, l := range lists {
				for _, n := range l {
					if strings.HasPrefix(n, f) {
						return true
					}
				}
			}
			return false
		}, nil
	case "birthdate":
		prefix, date := splitDatePrefix(v)
		q, err := match.ParseDate(date)
		if err != nil {
			return nil, fmt.Errorf("parameter birthdate: not a FHIR date: %w", ErrRejected)
		}
		cmp, ok := dateComparisons[prefix]
		if !ok {
			return nil, fmt.Errorf("parameter birthdate: unknown prefix: %w", ErrRejected)
		}
		qlo, qhi := dateRange(q)
		return func(d *demographics) bool {
			if d.birth.IsZero() {
				return false
			}
			lo, hi := dateRange(d.birth)
			return cmp(lo, hi, qlo, qhi)
		}, nil
	case "gender":
		return func(d *demographics) bool { return d.gender == v }, nil
	}
	return nil, fmt.Errorf("unsupported parameter %s: %w", safeParamName(name), ErrRejected)
}

// splitDatePrefix takes a FHIR search prefix off a date value.
func splitDatePrefix(v string) (string, string) {
	if len(v) > 2 && v[0] >= 'a' && v[0] <= 'z' && v[1] >= 'a' && v[1] <= 'z' {
		return v[:2], v[2:]
	}
	return "eq", v
}

// dateRange is the first and last day a date of its precision covers, as
// yyyymmdd numbers.
func dateRange(d match.Date) (int, int) {
	lo, hi := d.Year*10000+101, d.Year*10000+1231
	if d.Month != 0 {
		lo, hi = d.Year*10000+d.Month*100+1, d.Year*10000+d.Month*100+31
	}
	if d.Day != 0 {
		lo = d.Year*10000 + d.Month*100 + d.Day
		hi = lo
	}
	return lo, hi
}

// dateComparisons are the FHIR date prefixes over ranges [lo, hi] of the
// resource's value and [qlo, qhi] of the parameter's.
var dateComparisons = map[string]func(lo, hi, qlo, qhi int) bool{
	"eq": func(lo, hi, qlo, qhi int) bool { return lo >= qlo && hi <= qhi },
	"ne": func(lo, hi, qlo, qhi int) bool { return !(lo >= qlo && hi <= qhi) },
	"gt": func(lo, hi, qlo, qhi int) bool { return hi > qhi },
	"lt": func(lo, hi, qlo, qhi int) bool { return lo < qlo },
	"ge": func(lo, hi, qlo, qhi int) bool { return hi >= qlo },
	"le": func(lo, hi, qlo, qhi int) bool { return lo <= qhi },
	"sa": func(lo, hi, qlo, qhi int) bool { return lo > qhi },
	"eb": func(lo, hi, qlo, qhi int) bool { return hi < qlo },
	"ap": func(lo, hi, qlo, qhi int) bool { return hi >= qlo-10000 && lo <= qhi+10000 },
}

// PatientMatch says how the gateway searches this source by
// demographics: a Bundle answers the phonetic parameter unless its
// configuration says otherwise.
func (b *Bundle) PatientMatch() string {
	if b.patientMatch == "" {
		return PatientMatchPhonetic
	}
	return b.patientMatch
}
