package evalset

import (
	"fmt"
	"runtime"
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

// prepared is a record ready for comparison, with its blocking keys.
type prepared struct {
	rec  *Record
	r    *match.Record
	keys []string
}

// Evaluate scores every German and Dutch record against the candidates a
// narrowing search would bring back from every other country's source
// (records sharing a name, or a birth year and the start of a name), and
// counts per grade how many pairs are the same person.
func Evaluate(m *match.Model, set *Set) Report {
	bySource := map[string][]*prepared{}
	index := map[string]map[string][]*prepared{}
	var all []*prepared
	for i := range set.Records {
		rec := &set.Records[i]
		p := &prepared{rec: rec, r: m.Prepare(rec.Traits), keys: blockingKeys(rec.Traits)}
		all = append(all, p)
		bySource[rec.Source] = append(bySource[rec.Source], p)
		if index[rec.Source] == nil {
			index[rec.Source] = map[string][]*prepared{}
		}
		for _, k := range p.keys {
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
		for _, k := range q.keys {
			for _, c := range index[src][k] {
				if seen[c] {
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

// blockingKeys are what a narrowing search finds a record by: each word of
// its names (folded), and the birth year with the start of each word.
func blockingKeys(t match.Traits) []string {
	var words, main []string
	split := func(s string) []string {
		return strings.Fields(strings.NewReplacer("-", " ", "'", "").Replace(match.Latin(s)))
	}
	for _, n := range t.Names {
		main = append(main, split(n.Family)...)
		for i, g := range n.Given {
			words = append(words, split(g)...)
			if i == 0 {
				main = append(main, split(g)...)
			}
		}
	}
	words = append(words, main...)
	seen := map[string]bool{}
	var keys []string
	add := func(k string) {
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	for _, w := range words {
		if sk := match.Skeleton(w); len(sk) >= 2 {
			add("n:" + sk)
		}
	}
	for _, w := range main {
		sk := match.Skeleton(w)
		if t.BirthDate.Year != 0 && len(sk) >= 1 {
			for y := t.BirthDate.Year - 1; y <= t.BirthDate.Year+1; y++ {
				add(fmt.Sprintf("y:%d:%s", y, sk[:1]))
			}
		}
	}
	return keys
}
