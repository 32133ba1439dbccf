package evalset

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/migrant-health/mhg/gateway/match"
)

// GradeStats are the pairs the model put in one grade.
type GradeStats struct {
	Grade match.Grade
	// Pairs were graded so; True of them are the same person.
	Pairs, True int
	// Precision is True/Pairs (1 when no pair got the grade).
	Precision float64
	// AtLeastPrecision and AtLeastRecall count every pair graded this or
	// higher: the share of them that are the same person, and the share
	// of all same-person pairs they hold.
	AtLeastPrecision, AtLeastRecall float64
}

// Report is what an evaluation measured.
type Report struct {
	// Records and Queries: records in the set, and those used as queries
	// (the German and Dutch ones, each matched against the other
	// countries' sources).
	Records, Queries int
	// Compared are the candidate pairs scored; TruePairs the pairs of one
	// person's records in different sources a query could find, of which
	// Blocked were not among the candidates (the narrowing lost them).
	Compared, TruePairs, Blocked int
	// Grades holds one row per grade, most confident first.
	Grades []GradeStats
}

// Grade returns the row of grade g.
func (r Report) Grade(g match.Grade) GradeStats {
	for _, s := range r.Grades {
		if s.Grade == g {
			return s
		}
	}
	return GradeStats{Grade: g}
}

// String renders the report as a table.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "records %d, queries %d, candidate pairs %d, same-person pairs %d (%d not among the candidates)\n",
		r.Records, r.Queries, r.Compared, r.TruePairs, r.Blocked)
	fmt.Fprintf(&b, "%-14s %9s %9s %10s %13s %10s\n", "grade", "pairs", "same", "precision", "precision>=", "recall>=")
	for _, g := range r.Grades {
		fmt.Fprintf(&b, "%-14s %9d %9d %10.4f %13.4f %10.4f\n", g.Grade, g.Pairs, g.True, g.Precision, g.AtLeastPrecision, g.AtLeastRecall)
	}
	return b.String()
}

// prepared is a record ready for comparison, with what narrowing
// searches find it by.
type prepared struct {
	rec   *Record
	r     *match.Record
	block blocking
}

// Evaluate scores every German and Dutch record against the candidates the
// gateway's narrowing searches would bring back from every other
// country's source (both names, or one name and the birth year a year
// either side, matched by consonant skeleton as a source answering the
// phonetic parameter does), and counts per grade how many pairs are the
// same person. Same-person pairs the searches miss count against recall.
func Evaluate(m *match.Model, set *Set) Report {
	bySource := map[string][]*prepared{}
	index := map[string]map[string][]*prepared{}
	var all []*prepared
	for i := range set.Records {
		rec := &set.Records[i]
		p := &prepared{rec: rec, r: m.Prepare(rec.Traits), block: blockingOf(rec.Traits)}
		all = append(all, p)
		bySource[rec.Source] = append(bySource[rec.Source], p)
		if index[rec.Source] == nil {
			index[rec.Source] = map[string][]*prepared{}
		}
		for _, k := range p.block.words {
			index[rec.Source][k] = append(index[rec.Source][k], p)
		}
	}
	rep := Report{Records: len(set.Records)}
	var queries []*prepared
	for _, q := range all {
		if q.rec.Source == "DE" || q.rec.Source == "NL" {
			queries = append(queries, q)
		}
	}
	rep.Queries = len(queries)
	// The queries are shared out between the processors; each part counts
	// on its own and the counts are added up after.
	parts := runtime.GOMAXPROCS(0)
	tallies := make([]tally, parts)
	var wg sync.WaitGroup
	for p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p; i < len(queries); i += parts {
				tallies[p].query(m, queries[i], bySource, index)
			}
		}()
	}
	wg.Wait()
	counts := map[match.Grade][2]int{}
	for _, t := range tallies {
		rep.Compared += t.compared
		rep.TruePairs += t.truePairs
		rep.Blocked += t.blocked
		for g, n := range t.counts {
			c := counts[g]
			counts[g] = [2]int{c[0] + n[0], c[1] + n[1]}
		}
	}
	cumPairs, cumTrue := 0, 0
	for _, g := range match.Grades {
		n := counts[g]
		s := GradeStats{Grade: g, Pairs: n[0], True: n[1], Precision: 1, AtLeastPrecision: 1}
		if n[0] > 0 {
			s.Precision = float64(n[1]) / float64(n[0])
		}
		cumPairs += n[0]
		cumTrue += n[1]
		if cumPairs > 0 {
			s.AtLeastPrecision = float64(cumTrue) / float64(cumPairs)
		}
		if rep.TruePairs > 0 {
			s.AtLeastRecall = float64(cumTrue) / float64(rep.TruePairs)
		}
		rep.Grades = append(rep.Grades, s)
	}
	return rep
}

// tally is what one part of the queries counted.
type tally struct {
	compared, truePairs, blocked int
	counts                       map[match.Grade][2]int
}

// query scores one query against the candidates of every other source.
func (t *tally) query(m *match.Model, q *prepared, bySource map[string][]*prepared, index map[string]map[string][]*prepared) {
	if t.counts == nil {
		t.counts = map[match.Grade][2]int{}
	}
	for src, recs := range bySource {
		if src == q.rec.Source {
			continue
		}
		seen := map[*prepared]bool{}
		for _, k := range append(slices.Clone(q.block.family), q.block.given...) {
			for _, c := range index[src][k] {
				if seen[c] || !q.block.finds(c.block) {
					continue
				}
				seen[c] = true
				res := m.Compare(q.r, c.r)
				t.compared++
				n := t.counts[res.Grade]
				n[0]++
				if c.rec.Person == q.rec.Person {
					n[1]++
				}
				t.counts[res.Grade] = n
			}
		}
		for _, c := range recs {
			if c.rec.Person == q.rec.Person {
				t.truePairs++
				if !seen[c] {
					t.blocked++
				}
			}
		}
	}
}

// blocking is what the gateway's narrowing searches find a record by (as
// federate sends them to a source that answers the phonetic parameter):
// the consonant skeletons of the words of every name it holds, and its
// birth year; and what a query searches with: the skeletons of its family
// and given name (with and without a leading article).
type blocking struct {
	words         []string
	family, given []string
	year          int
}

func blockingOf(t match.Traits) blocking {
	var b blocking
	add := func(list []string, s string) []string {
		if sk := match.Skeleton(s); sk != "" && !slices.Contains(list, sk) {
			list = append(list, sk)
		}
		return list
	}
	spellings := func(s string) []string {
		out := []string{s}
		l := strings.ToLower(match.Latin(s))
		for _, art := range []string{"al-", "el-", "al ", "el "} {
			if strings.HasPrefix(l, art) {
				out = append(out, l[len(art):])
			}
		}
		return out
	}
	for _, n := range t.Names {
		parts := append([]string{n.Family}, n.Given...)
		for _, p := range parts {
			b.words = add(b.words, p)
			for _, w := range strings.FieldsFunc(p, func(r rune) bool { return r == ' ' || r == '-' }) {
				b.words = add(b.words, w)
			}
		}
		for _, f := range spellings(n.Family) {
			b.family = add(b.family, f)
		}
		if len(n.Given) > 0 {
			for _, g := range spellings(n.Given[0]) {
				b.given = add(b.given, g)
			}
		}
	}
	b.year = t.BirthDate.Year
	return b
}

// finds reports whether the gateway's narrowing searches for q bring back
// c: both names, or one name and a birth year a year either side.
func (q blocking) finds(c blocking) bool {
	has := func(keys []string) bool {
		for _, k := range keys {
			if slices.Contains(c.words, k) {
				return true
			}
		}
		return false
	}
	fam, giv := has(q.family), has(q.given)
	near := q.year != 0 && c.year != 0 && c.year >= q.year-1 && c.year <= q.year+1
	return fam && giv || (fam || giv) && near
}
