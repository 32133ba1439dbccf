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
//     in a nested population) is masked: any before a population's total
//     (its most telling number), then one that does not stand alone in
//     another published sum (and so needs no complement of its own), then
//     the smallest of at least K, or else the largest. The loop ends
//     because every round masks a cell, and a table with everything masked
//     passes;
//  4. release of needless complements: the greedy rounds of step 3 can mask
//     more than a pattern needs (a complement chosen early may be made
//     redundant by later ones). Each complementary cell, largest count
//     first, is published again when the table still passes Check without
//     it, so that no single complement of the result can be dropped.
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
	vals, err := suppress(rel, cells, truth, k)
	if err != nil {
		return nil, err
	}
	rel.Values = vals
	return rel, nil
}

// suppress runs steps 1 to 4 and returns the values it publishes.
func suppress(rel *Release, cells []Cell, truth []int, k int) ([]Value, error) {
	masked := make([]bool, len(cells))
	for i, x := range truth {
		masked[i] = x > 0 && x < k
	}
	primary := slices.Clone(masked)
	publish := func() {
		for i, c := range cells {
			v := Value{Cell: c, Masked: masked[i]}
			if !masked[i] {
				v.Count = roundTo(truth[i], rel.Rules.Rounding, k)
			}
			rel.Values[i] = v
		}
	}
	// Masking a cell takes a constraint away from the attacker, so an
	// interval found wide enough stays wide while masks are only added:
	// safe remembers those cells, and each round audits the others.
	safe := make([]bool, len(cells))
	everything := false
	for {
		publish()
		failing, err := firstNarrow(rel, k, -1, safe)
		if err != nil {
			return nil, err
		}
		if failing < 0 {
			if err := release(rel, truth, primary, masked, publish); err != nil {
				return nil, err
			}
			return slices.Clone(rel.Values), nil
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

// release publishes again, largest count first, every complementary cell
// whose mask the table does not need: one without which it still passes
// Check. The release is left published as the final masks say.
func release(rel *Release, truth []int, primary, masked []bool, publish func()) error {
	var comps []int
	for i := range masked {
		if masked[i] && !primary[i] {
			comps = append(comps, i)
		}
	}
	slices.SortStableFunc(comps, func(a, b int) int { return truth[b] - truth[a] })
	// Every masked cell passes before each trial (suppress ended on a
	// table that passes, and a trial that fails is undone). Publishing
	// cell i adds one constraint, over the unknowns of i: it can narrow
	// only the intervals of masked cells whose unknowns are linked to
	// those (the same connected component before i is published); the
	// linear programs of every other cell are the same as before, and so
	// are their intervals.
	cells := Cells(len(rel.Populations), rel.Dims)
	safe := make([]bool, len(masked))
	for _, i := range comps {
		sys, err := newSystem(rel)
		if err != nil {
			return err
		}
		touched := sys.componentsOf(cells[i])
		for j := range masked {
			safe[j] = masked[j] && !sys.reaches(cells[j], touched)
		}
		masked[i] = false
		publish()
		// Primary cells stay masked, so no published count is below K:
		// the intervals decide, and the first narrow one is enough.
		failing, err := firstNarrow(rel, rel.Rules.K, i, safe)
		if err != nil {
			return err
		}
		if failing >= 0 {
			masked[i] = true
			publish()
		}
	}
	publish()
	return nil
}

// firstNarrow returns the index of a masked cell whose interval is
// narrower than k, or -1. It audits only the masked cells safe does not
// mark, and marks those it finds wide enough. With near >= 0 (a cell just
// published), the masked cells that share a published sum with it, or its
// place in a nested population, are audited first: a table it broke fails
// on one of them, after a few linear programs rather than all.
func firstNarrow(rel *Release, k, near int, safe []bool) (int, error) {
	sys, err := newSystem(rel)
	if err != nil {
		return -1, err
	}
	cells := Cells(len(rel.Populations), rel.Dims)
	order := make([]int, 0, len(cells))
	for i, v := range rel.Values {
		if v.Masked && !safe[i] {
			order = append(order, i)
		}
	}
	if near >= 0 {
		nc := cells[near]
		close := func(i int) bool {
			c := cells[i]
			if c.Population == nc.Population {
				return sharesSum(rel.Dims, c.Coord, nc.Coord)
			}
			return rel.Nested && (c.Population == nc.Population-1 || c.Population == nc.Population+1) && slices.Equal(c.Coord, nc.Coord)
		}
		slices.SortStableFunc(order, func(a, b int) int {
			ca, cb := close(a), close(b)
			switch {
			case ca == cb:
				return 0
			case ca:
				return -1
			}
			return 1
		})
	}
	for _, i := range order {
		iv, err := sys.interval(cells[i])
		if err != nil {
			return -1, err
		}
		if iv.Width() < k {
			return i, nil
		}
		safe[i] = true
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
	// Anything before a population's total (its most telling number),
	// then a cell that is not left alone in another published sum (it then
	// needs no complement of its own); then the smallest of at least K, or
	// else the largest.
	score := func(i int) [2]int {
		var sc [2]int
		if len(rel.Dims) > 0 && level(cells[i].Coord) == len(rel.Dims) {
			sc[0] = 1
		}
		sc[1] = loneLines(rel, cells, masked, i, f)
		return sc
	}
	less := func(a, b [2]int) bool { return a[0] < b[0] || a[0] == b[0] && a[1] < b[1] }
	best, bestBig := -1, -1
	var bestScore, bigScore [2]int
	for i := range cells {
		if masked[i] || truth[i] == 0 || !related(i) {
			continue
		}
		if !sharesSum(rel.Dims, cells[i].Coord, cells[f].Coord) && cells[i].Population == fp {
			continue
		}
		sc := score(i)
		if truth[i] >= k && (best < 0 || less(sc, bestScore) || sc == bestScore && truth[i] < truth[best]) {
			best, bestScore = i, sc
		}
		if bestBig < 0 || less(sc, bigScore) || sc == bigScore && truth[i] > truth[bestBig] {
			bestBig, bigScore = i, sc
		}
	}
	if best >= 0 {
		return best
	}
	return bestBig
}

// level is how many dimensions a cell sums over: 0 for an atom, as many
// as there are for the total.
func level(coord []int) int {
	n := 0
	for _, c := range coord {
		if c == All {
			n++
		}
	}
	return n
}

// loneLines counts the published sum lines through cell i (all its cells
// but one coordinate fixed, the margin included) that do not hold the
// failing cell f and hold no masked cell besides i: the lines where
// masking i would leave it alone, to be protected by yet another mask.
func loneLines(rel *Release, cells []Cell, masked []bool, i, f int) int {
	c := cells[i]
	n := 0
	for d, size := range rel.Dims {
		if cells[f].Population == c.Population && onLine(c.Coord, cells[f].Coord, d) {
			continue
		}
		other := false
		coord := slices.Clone(c.Coord)
		for x := All; x < size && !other; x++ {
			if x == c.Coord[d] {
				continue
			}
			coord[d] = x
			j := rel.Index(Cell{Population: c.Population, Coord: coord})
			other = masked[j]
		}
		if !other {
			n++
		}
	}
	return n
}

// onLine says whether b lies on the line through a along dimension d.
func onLine(a, b []int, d int) bool {
	for e := range a {
		if e != d && a[e] != b[e] {
			return false
		}
	}
	return true
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
