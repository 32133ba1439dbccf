package match

import (
	"slices"
	"strings"

	"github.com/hbollon/go-edlib"
)

// Name is one recorded name of a person.
type Name struct {
	// Family is the family name as written (it may hold several words:
	// "Al Khatib", "Gebre Medhin", "van der Berg").
	Family string
	// Given are the given names in order; the first is the given name
	// compared as such, the others (a patronymic, a father's name, second
	// names) are compared as middle names, which may be missing on one side.
	Given []string
}

// Identifier is a business identifier: a system URI and a value.
type Identifier struct {
	System, Value string
}

// Traits are what one record says about a person. Every field may be
// empty.
type Traits struct {
	// Names are the person's names, official first; the best pair of names
	// of two records is compared.
	Names []Name
	// BirthDate is the birth date as precise as recorded.
	BirthDate Date
	// Sex is the administrative gender: male, female, other or unknown.
	Sex string
	// BirthPlace is the ISO 3166-1 alpha-2 country of birth.
	BirthPlace string
	// Citizenship are ISO 3166-1 alpha-2 countries of citizenship.
	Citizenship []string
	// Identifiers are the record's identifiers.
	Identifiers []Identifier
	// Country is the ISO 3166-1 alpha-2 country that keeps the record: it
	// selects the model's adjustments for that country (its conventions
	// for unknown dates, its own orthography).
	Country string
}

// Record is Traits prepared for comparison: names folded once, so that a
// record compared with many others is folded once.
type Record struct {
	names       []preparedName
	birth       Date
	sex         string
	birthPlace  string
	citizenship []string
	ids         map[string]string
	country     string
	w           *weights
}

type preparedName struct {
	family, given words
	middle        []folded
}

// words is a name of one or more words, and the same with an article
// taken off the front when it may have one; joined are both written as one
// word.
type words struct {
	ws, bare           []folded
	joined, joinedBare folded
}

func prepareWords(s string, orth *strings.Replacer) words {
	ws, abjad := nameWords(s, orth)
	out := words{ws: foldAll(ws, abjad)}
	if len(out.ws) > 0 {
		out.joined = join(out.ws)
	}
	if bare, ok := withoutArticle(ws, abjad); ok {
		out.bare = foldAll(bare, abjad)
		if len(out.bare) > 0 {
			out.joinedBare = join(out.bare)
		} else {
			out.bare = nil
		}
	}
	return out
}

// Prepare folds t for comparison under m.
func (m *Model) Prepare(t Traits) *Record {
	w := m.weightsFor(t.Country)
	r := &Record{birth: t.BirthDate, country: t.Country, w: w, birthPlace: strings.ToUpper(t.BirthPlace)}
	switch s := strings.ToLower(t.Sex); s {
	case "male", "female":
		r.sex = s
	}
	for _, c := range t.Citizenship {
		if c != "" {
			r.citizenship = append(r.citizenship, strings.ToUpper(c))
		}
	}
	for _, id := range t.Identifiers {
		if id.System == "" || id.Value == "" {
			continue
		}
		if r.ids == nil {
			r.ids = map[string]string{}
		}
		r.ids[id.System] = normaliseID(id.Value)
	}
	for _, n := range t.Names {
		var pn preparedName
		pn.family = prepareWords(n.Family, w.orthography)
		if len(n.Given) > 0 {
			pn.given = prepareWords(n.Given[0], w.orthography)
			for _, g := range n.Given[1:] {
				ws, abjad := nameWords(g, w.orthography)
				pn.middle = append(pn.middle, foldAll(ws, abjad)...)
			}
		}
		if len(pn.family.ws)+len(pn.given.ws) > 0 {
			r.names = append(r.names, pn)
		}
	}
	return r
}

func foldAll(ws []string, abjad bool) []folded {
	out := make([]folded, 0, len(ws))
	for _, w := range ws {
		if f := foldWord(w, abjad); !f.empty() {
			out = append(out, f)
		}
	}
	return out
}

// normaliseID drops the spaces, dashes, dots and slashes identifiers are
// written with in some places and not others, and upper-cases.
func normaliseID(v string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(v) {
		switch r {
		case ' ', '-', '.', '/':
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Result is the comparison of two records.
type Result struct {
	// Levels is each field's agreement level, in the order of Fields.
	Levels [8]Level
	// Weight is the total weight: the sum of the levels' weights.
	Weight float64
	// Score is the probability that the records are the same person.
	Score float64
	// Grade is the weight's grade.
	Grade Grade
	// Swapped is set when the names agreed best with family and given
	// names swapped.
	Swapped bool
}

// Level returns the level of field f.
func (r Result) Level(f Field) Level {
	if i := slices.Index(Fields, f); i >= 0 {
		return r.Levels[i]
	}
	return Missing
}

// Compare weighs the evidence that q and c are the same person. The
// weights are those of c's country (where the candidate's record was kept
// decides how its dates and names were written).
func (m *Model) Compare(q, c *Record) Result {
	w := c.w
	var res Result
	for i := range res.Levels {
		res.Levels[i] = Missing
	}
	// Names: the best pair of recorded names, in either order.
	best := -1e9
	for _, a := range q.names {
		for _, b := range c.names {
			for _, swapped := range []bool{false, true} {
				fam, giv, mid := compareNames(a, b, swapped)
				total := m.nameWeight(w, FieldFamily, fam, a.family.ws) + m.nameWeight(w, FieldGiven, giv, a.given.ws) + w.w[FieldMiddle][mid]
				if total > best {
					best = total
					res.Levels[0], res.Levels[1], res.Levels[2] = fam, giv, mid
					res.Swapped = swapped
				}
			}
		}
	}
	if best > -1e9 {
		res.Weight += best
	}
	conv := func(r *Record) []monthDay { return r.w.conventions }
	res.Levels[3] = compareDates(q.birth, c.birth, conv(q), conv(c))
	res.Levels[4] = agree(q.sex, c.sex)
	res.Levels[5] = agree(q.birthPlace, c.birthPlace)
	res.Levels[6] = overlap(q.citizenship, c.citizenship)
	res.Levels[7] = compareIDs(q.ids, c.ids)
	for i := 3; i < len(Fields); i++ {
		res.Weight += w.w[Fields[i]][res.Levels[i]]
	}
	res.Grade = m.Grade(res.Weight)
	// Certain means that the names are the same names (in any spelling,
	// not merely alike), that nothing contradicts, and that something tells
	// the person from a namesake: the same full birth date or a shared
	// identifier. Anything less leaves the pair probable at most, whatever
	// the weight.
	if res.Grade == Certain {
		fam, giv, date, id := res.Levels[0], res.Levels[1], res.Levels[3], res.Levels[7]
		sameName := func(l Level) bool { return l == Exact || l == Variant }
		if !sameName(fam) || !sameName(giv) || date == Disagree || (date != Exact && id != Agree) {
			res.Grade = Probable
		}
	}
	res.Score = m.Probability(res.Weight)
	return res
}

// nameWeight is the weight of a name level, lowered for common names:
// agreeing on a name a large share of people have is weak evidence.
func (m *Model) nameWeight(w *weights, f Field, l Level, words []folded) float64 {
	if l == Missing {
		return 0
	}
	wt := w.w[f][l]
	if (l == Exact || l == Variant) && len(words) > 0 {
		share := 0.0
		for _, wd := range words {
			if s, ok := m.common[wd.skel]; ok && (share == 0 || s < share) {
				share = s
			}
		}
		if p := w.prob[f][l]; share > p.U {
			wt = Probabilities{M: p.M, U: share}.Weight()
		}
	}
	return wt
}

// compareNames grades family, given and middle names of two names; when
// swapped, a's family is compared with b's given name and the other way
// round, and exact agreement counts as a variant only (the order of the
// names is itself in doubt).
func compareNames(a, b preparedName, swapped bool) (fam, giv, mid Level) {
	bf, bg := b.family, b.given
	if swapped {
		bf, bg = b.given, b.family
	}
	fam, giv = compareWords(a.family, bf), compareWords(a.given, bg)
	if swapped {
		if fam == Exact {
			fam = Variant
		}
		if giv == Exact {
			giv = Variant
		}
	}
	mid = Missing
	if len(a.middle) > 0 && len(b.middle) > 0 {
		mid = Disagree
		for _, x := range a.middle {
			for _, y := range b.middle {
				if l := compareWord(x, y); l == Exact || l == Variant || l == Similar {
					mid = Agree
				}
			}
		}
	}
	return fam, giv, mid
}

// compareWords grades two names, each with and without an article in
// front, and keeps the best.
func compareWords(a, b words) Level {
	if len(a.ws) == 0 || len(b.ws) == 0 {
		return Missing
	}
	best := compareWordList(a.ws, b.ws, a.joined, b.joined)
	if a.bare == nil && b.bare == nil || best == Exact {
		return best
	}
	type form struct {
		ws     []folded
		joined folded
	}
	as, bs := []form{{a.ws, a.joined}}, []form{{b.ws, b.joined}}
	if a.bare != nil {
		as = append(as, form{a.bare, a.joinedBare})
	}
	if b.bare != nil {
		bs = append(bs, form{b.bare, b.joinedBare})
	}
	for i, x := range as {
		for j, y := range bs {
			if i == 0 && j == 0 {
				continue
			}
			if l := compareWordList(x.ws, y.ws, x.joined, y.joined); rankName(l) < rankName(best) {
				best = l
			}
		}
	}
	return best
}

// rankName orders name levels, best first.
func rankName(l Level) int {
	switch l {
	case Exact:
		return 0
	case Variant:
		return 1
	case Similar:
		return 2
	case Disagree:
		return 3
	}
	return 4
}

// compareWordList grades two names of one or more words: the words written
// together first (compound names split or joined), then word by word (a
// compound against one of its parts is a variant).
func compareWordList(a, b []folded, ja, jb folded) Level {
	l := compareWord(ja, jb)
	if l == Exact || l == Variant {
		return l
	}
	if len(a) > 1 || len(b) > 1 {
		for _, x := range a {
			for _, y := range b {
				switch compareWord(x, y) {
				case Exact, Variant:
					return Variant
				case Similar:
					l = Similar
				}
			}
		}
	}
	return l
}

// compareWord grades two folded names. Skeletons of two or fewer
// consonants say little (Omar and Umar, but also Mira and Mara) unless one
// side was written without vowels in the first place (علي and Ali).
func compareWord(a, b folded) Level {
	switch {
	case a.fold == b.fold:
		return Exact
	case a.key == b.key, len(a.skel) >= 3 && a.skel == b.skel, (a.abjad || b.abjad) && a.skel != "" && a.skel == b.skel:
		return Variant
	case len(a.skel) == 2 && a.skel == b.skel:
		return Similar
	}
	if alike(a.key, b.key, 0.9) || len(a.skel) >= 3 && len(b.skel) >= 3 && alike(a.skel, b.skel, 0.92) {
		return Similar
	}
	return Disagree
}

func agree(a, b string) Level {
	switch {
	case a == "" || b == "":
		return Missing
	case a == b:
		return Agree
	}
	return Disagree
}

func overlap(a, b []string) Level {
	if len(a) == 0 || len(b) == 0 {
		return Missing
	}
	for _, x := range a {
		if slices.Contains(b, x) {
			return Agree
		}
	}
	return Disagree
}

// compareIDs agrees when the records share a value in a system both use,
// and disagrees when they use a system with different values only.
func compareIDs(a, b map[string]string) Level {
	l := Missing
	for sys, v := range a {
		if w, ok := b[sys]; ok {
			if v == w {
				return Agree
			}
			l = Disagree
		}
	}
	return l
}

// alike reports whether the Jaro-Winkler similarity of a and b reaches
// min. Strings whose lengths differ by half or more cannot reach 0.9 (the
// Jaro part alone stays below 5/6), so they are not measured.
func alike(a, b string, min float64) bool {
	la, lb := len(a), len(b)
	if la > lb {
		la, lb = lb, la
	}
	if la*2 < lb {
		return false
	}
	return float64(edlib.JaroWinklerSimilarity(a, b)) >= min
}
