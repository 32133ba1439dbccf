package disclosure

import (
	"fmt"
	"slices"
)

// Protect decides the release of a table under the rules:
//
//  1. primary suppression: every cell (atom, margin or total) whose count is
//     in 1..K-1 is masked;
//  2. rounding, when the rules ask for it, of every published count;
//  3. complementary suppression: while the auditor (Audit) derives an
//     interval narrower than K for some masked cell, one more published
//     cell that shares a published sum with it (or sits at the same place
//     in a nested population) is masked: the smallest one of at least K, or
//     else the largest. The loop ends because every round masks a cell, and
//     a table with everything masked passes.
//
// The result passes Check by construction. The same table and rules always
// give the same release: there is no randomness to average away.
func Protect(t Table, rules Rules) (*Release, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	k := rules.k()
	cells := Cells(len(t.Populations), t.Dims)
	truth := make([]int, len(cells))
	for i, c := range cells {
		for _, a := range atomsOf(t.Dims, c.Coord) {
			truth[i] += t.Counts[c.Population][a]
		}
	}
	rel := &Release{
		Populations: append([]string(nil), t.Populations...),
		Nested:      t.Nested,
		Dims:        append([]int(nil), t.Dims...),
		Rules:       Rules{K: k, Rounding: max(rules.Rounding, 0)},
		Values:      make([]Value, len(cells)),
	}
	masked := make([]bool, len(cells))
	for i, x := range truth {
		masked[i] = x > 0 && x < k
	}
	publish := func() {
		for i, c := range cells {
			v := Value{Cell: c, Masked: masked[i]}
			if !masked[i] {
				v.Count = roundTo(truth[i], rel.Rules.Rounding, k)
			}
			rel.Values[i] = v
		}
	}
	everything := false
	for {
		publish()
		failing, err := firstNarrow(rel, k)
		if err != nil {
			return nil, err
		}
		if failing < 0 {
			return rel, nil
		}
		next := complement(rel, cells, truth, masked, failing, k)
		if next < 0 {
			// Nothing related is left to mask: mask every published
			// non-zero cell, which passes (every masked cell is then free
			// above).
			if everything {
				return nil, fmt.Errorf("%w: no suppression pattern protects the table", ErrDisclosive)
			}
			everything = true
			for i := range masked {
				masked[i] = masked[i] || truth[i] > 0
			}
			continue
		}
		masked[next] = true
	}
}

// firstNarrow returns the index of the first masked cell whose interval is
// narrower than k, or -1.
func firstNarrow(rel *Release, k int) (int, error) {
	sys, err := newSystem(rel)
	if err != nil {
		return -1, err
	}
	cells := Cells(len(rel.Populations), rel.Dims)
	for i, v := range rel.Values {
		if !v.Masked {
			continue
		}
		iv, err := sys.interval(cells[i])
		if err != nil {
			return -1, err
		}
		if iv.Width() < k {
			return i, nil
		}
	}
	return -1, nil
}

// complement picks the cell to mask next for the failing cell f.
func complement(rel *Release, cells []Cell, truth []int, masked []bool, f, k int) int {
	fa := atomsOf(rel.Dims, cells[f].Coord)
	fp := cells[f].Population
	related := func(i int) bool {
		c := cells[i]
		ca := atomsOf(rel.Dims, c.Coord)
		if c.Population == fp {
			// Both lie within some published sum: the smallest cell that
			// holds both of them is one (margins and total are published or
			// masked cells of the table too).
			return true
		}
		if rel.Nested && (c.Population == fp-1 || c.Population == fp+1) {
			return slices.Equal(ca, fa)
		}
		return false
	}
	best, bestBig := -1, -1
	for i := range cells {
		if masked[i] || truth[i] == 0 || !related(i) {
			continue
		}
		if !sharesSum(rel.Dims, cells[i].Coord, cells[f].Coord) && cells[i].Population == fp {
			continue
		}
		if truth[i] >= k && (best < 0 || truth[i] < truth[best]) {
			best = i
		}
		if bestBig < 0 || truth[i] > truth[bestBig] {
			bestBig = i
		}
	}
	if best >= 0 {
		return best
	}
	return bestBig
}

// sharesSum says whether two cells of one population appear together in a
// published sum line: they differ in exactly one coordinate, or one is a
// margin holding the other.
func sharesSum(dims, a, b []int) bool {
	diff := 0
	for d := range dims {
		if a[d] != b[d] {
			diff++
		}
	}
	if diff <= 1 {
		return true
	}
	// a margin and an atom it holds, or the total and anything
	holds := func(x, y []int) bool {
		for d := range dims {
			if x[d] != All && x[d] != y[d] {
				return false
			}
		}
		return true
	}
	return holds(a, b) || holds(b, a)
}
