// Package disclosure decides what of a table of counts may be published:
// primary suppression of small counts, complementary suppression so that no
// masked count can be recovered from the published ones, optional rounding,
// and the auditor's check that recomputes, from the published numbers alone,
// the tightest interval an attacker can derive for every masked count.
//
// It does no I/O and knows nothing of FHIR: gateway/stats builds a Table
// from a measure's counts and renders the Release as a MeasureReport.
package disclosure

import (
	"errors"
	"fmt"
)

// Table is a measure's counts before release: for each population, one
// count per combination of categories of the dimensions (the atoms of the
// table, row-major). The published cells are the atoms and every margin:
// with two dimensions the atoms, the row and column totals and the grand
// total; with one the categories and the total; with none the total alone.
type Table struct {
	// Populations name the populations (initial-population, ...).
	Populations []string
	// Nested says that population i+1 is a subset of population i, atom by
	// atom (a numerator within its denominator): the auditor uses it, as an
	// attacker would.
	Nested bool
	// Dims are the number of categories of each dimension (at most two).
	Dims []int
	// Counts holds, per population, the atoms in row-major order; its
	// length is the product of Dims (1 with no dimension).
	Counts [][]int
}

// Rules are the terms of release.
type Rules struct {
	// K is the smallest count published: 1..K-1 are masked. Below 2 means
	// 10.
	K int
	// Rounding, when above 1, rounds every published count to the nearest
	// multiple of it (ties up); a count that would round below K is shown
	// as the smallest multiple at or above K.
	Rounding int
}

// DefaultK is the minimum cell size when the terms name none.
const DefaultK = 10

// Cell names one published number: a population and, per dimension, a
// category or All.
type Cell struct {
	Population int
	Coord      []int
}

// All in a coordinate means every category of that dimension (a margin).
const All = -1

// Value is one published number.
type Value struct {
	Cell
	// Count is the published count (rounded when the rules say so); zero
	// when Masked.
	Count int
	// Masked says the count is withheld.
	Masked bool
}

// Release is what may leave: the table's shape, the rules, and every cell's
// published value. It holds no true value of a masked cell.
type Release struct {
	Populations []string
	Nested      bool
	Dims        []int
	Rules       Rules
	// Values lists every cell in the canonical order of Cells.
	Values []Value
}

// Errors callers branch on.
var (
	// ErrShape: the table's counts do not fit its dimensions.
	ErrShape = errors.New("table shape")
	// ErrDisclosive: the auditor derived an interval narrower than K for a
	// masked cell (or found a published count in 1..K-1).
	ErrDisclosive = errors.New("release discloses a small count")
)

func (r Rules) k() int {
	if r.K < 2 {
		return DefaultK
	}
	return r.K
}

// atoms returns the number of atoms of a shape.
func atoms(dims []int) int {
	n := 1
	for _, d := range dims {
		n *= d
	}
	return n
}

// Cells lists every published cell of a shape in canonical order: by
// population, then margins before categories, first dimension slowest.
func Cells(pops int, dims []int) []Cell {
	var coords [][]int
	var walk func(prefix []int, d int)
	walk = func(prefix []int, d int) {
		if d == len(dims) {
			coords = append(coords, append([]int(nil), prefix...))
			return
		}
		for c := All; c < dims[d]; c++ {
			walk(append(prefix, c), d+1)
		}
	}
	walk(nil, 0)
	out := make([]Cell, 0, pops*len(coords))
	for p := 0; p < pops; p++ {
		for _, c := range coords {
			out = append(out, Cell{Population: p, Coord: c})
		}
	}
	return out
}

// atomsOf lists the atom indexes a coordinate sums over.
func atomsOf(dims, coord []int) []int {
	out := []int{0}
	for d, n := range dims {
		var next []int
		for _, a := range out {
			if coord[d] == All {
				for c := 0; c < n; c++ {
					next = append(next, a*n+c)
				}
			} else {
				next = append(next, a*n+coord[d])
			}
		}
		out = next
	}
	return out
}

func (t Table) validate() error {
	if len(t.Dims) > 2 {
		return fmt.Errorf("%w: %d dimensions, at most 2", ErrShape, len(t.Dims))
	}
	if len(t.Populations) == 0 || len(t.Counts) != len(t.Populations) {
		return fmt.Errorf("%w: %d populations, %d count lists", ErrShape, len(t.Populations), len(t.Counts))
	}
	for _, d := range t.Dims {
		if d < 1 {
			return fmt.Errorf("%w: a dimension without categories", ErrShape)
		}
	}
	n := atoms(t.Dims)
	for p, c := range t.Counts {
		if len(c) != n {
			return fmt.Errorf("%w: population %d has %d atoms, want %d", ErrShape, p, len(c), n)
		}
		for _, x := range c {
			if x < 0 {
				return fmt.Errorf("%w: a negative count", ErrShape)
			}
		}
		if t.Nested && p > 0 {
			for a, x := range c {
				if x > t.Counts[p-1][a] {
					return fmt.Errorf("%w: population %d is not within population %d", ErrShape, p, p-1)
				}
			}
		}
	}
	return nil
}

// Index returns the position of a cell in Values.
func (r *Release) Index(c Cell) int {
	per := 1
	for _, d := range r.Dims {
		per *= d + 1
	}
	i := 0
	for d, n := range r.Dims {
		i = i*(n+1) + c.Coord[d] + 1
	}
	return c.Population*per + i
}

// Lookup returns the published value of a cell.
func (r *Release) Lookup(c Cell) Value { return r.Values[r.Index(c)] }

// roundTo rounds a count for publication (see Rules.Rounding).
func roundTo(x, base, k int) int {
	if base <= 1 || x == 0 {
		return x
	}
	r := (x + base/2) / base * base
	if r < k {
		r = (k + base - 1) / base * base
	}
	return r
}

// bounds is what a published count says about the true one: [lo, hi], hi
// < 0 for no upper bound.
func (r *Release) bounds(v Value) (lo, hi int) {
	if v.Masked {
		return 0, -1
	}
	b, k := r.Rules.Rounding, r.Rules.k()
	if b <= 1 || v.Count == 0 {
		return v.Count, v.Count
	}
	lo, hi = v.Count-b/2, v.Count+(b+1)/2-1
	if v.Count == (k+b-1)/b*b {
		// Everything from k up rounds at least to this multiple.
		lo = k
	}
	return max(lo, k), hi
}
