package disclosure

import (
	"fmt"
	"math"
	"slices"
)

// Interval is what an attacker can derive about a masked cell from the
// published numbers: its true count lies in [Lo, Hi]. Unbounded says there
// is no upper bound (Hi is then meaningless).
type Interval struct {
	Cell
	Lo, Hi    int
	Unbounded bool
}

// Width is Hi-Lo, or MaxInt when unbounded.
func (iv Interval) Width() int {
	if iv.Unbounded {
		return math.MaxInt
	}
	return iv.Hi - iv.Lo
}

// Audit computes, from the release alone, the tightest interval of every
// masked cell under linear reasoning: each atom is a non-negative unknown;
// every published number fixes the sum of its atoms (to an interval when
// rounded, and then at least K, since smaller counts are never published);
// nested populations bound each other atom by atom. For each masked cell
// two linear programs (simplex.go) minimise and maximise the sum of
// its atoms over the constraints that reach it. The bounds are rounded
// inwards to whole counts, which is exact for one- and two-way tables with
// margins (their constraint matrices are totally unimodular) and otherwise
// an interval the attacker's integer reasoning could narrow further.
func Audit(r *Release) ([]Interval, error) {
	sys, err := newSystem(r)
	if err != nil {
		return nil, err
	}
	var out []Interval
	cells := Cells(len(r.Populations), r.Dims)
	for i, v := range r.Values {
		if !v.Masked {
			continue
		}
		iv, err := sys.interval(cells[i])
		if err != nil {
			return nil, err
		}
		out = append(out, iv)
	}
	return out, nil
}

// Check fails with ErrDisclosive when a published count lies in 1..K-1 or
// the auditor derives an interval narrower than K for a masked cell.
func Check(r *Release) error {
	k := r.Rules.k()
	for _, v := range r.Values {
		if !v.Masked && v.Count > 0 && v.Count < k {
			return fmt.Errorf("%w: a published count of %d is below k=%d", ErrDisclosive, v.Count, k)
		}
	}
	ivs, err := Audit(r)
	if err != nil {
		return err
	}
	for _, iv := range ivs {
		if iv.Width() < k {
			return fmt.Errorf("%w: masked cell %v lies in [%d, %d], narrower than k=%d", ErrDisclosive, iv.Cell, iv.Lo, iv.Hi, k)
		}
	}
	return nil
}

// system is the attacker's view: per atom variable its bounds, and the
// linear constraints between atoms.
type system struct {
	r      *Release
	nAtoms int
	lo, hi []float64 // per variable (population*nAtoms+atom); hi < 0: none
	rows   []row
	// fixed variables are published exactly: constants, not unknowns.
	fixed []bool
	// parts caches the linear system of each set of components.
	parts map[string]*part
	// comp is the connected component of each variable (through rows
	// between unknowns).
	comp []int
}

// row says lo <= sum(vars) <= hi (hi < 0: no upper bound), or, for a
// nesting row, vars[0] <= vars[1].
type row struct {
	vars   []int
	lo, hi float64
	nest   bool
}

func newSystem(r *Release) (*system, error) {
	pops := len(r.Populations)
	n := atoms(r.Dims)
	cells := Cells(pops, r.Dims)
	if len(r.Values) != len(cells) {
		return nil, fmt.Errorf("%w: %d values for %d cells", ErrShape, len(r.Values), len(cells))
	}
	s := &system{r: r, nAtoms: n, parts: map[string]*part{}, lo: make([]float64, pops*n), hi: make([]float64, pops*n)}
	for i := range s.hi {
		s.hi[i] = -1
	}
	for i, c := range cells {
		v := r.Values[i]
		if v.Masked {
			continue
		}
		lo, hi := r.bounds(v)
		as := atomsOf(r.Dims, c.Coord)
		if len(as) == 1 {
			id := c.Population*n + as[0]
			s.lo[id], s.hi[id] = float64(lo), float64(hi)
			continue
		}
		vars := make([]int, len(as))
		for j, a := range as {
			vars[j] = c.Population*n + a
		}
		s.rows = append(s.rows, row{vars: vars, lo: float64(lo), hi: float64(hi)})
	}
	if r.Nested {
		for p := 1; p < pops; p++ {
			for a := 0; a < n; a++ {
				s.rows = append(s.rows, row{vars: []int{p*n + a, (p-1)*n + a}, nest: true})
			}
		}
	}
	s.fixed = make([]bool, len(s.lo))
	for i := range s.lo {
		s.fixed[i] = s.hi[i] >= 0 && s.hi[i] == s.lo[i]
	}
	s.components()
	return s, nil
}

func (s *system) components() {
	parent := make([]int, len(s.lo))
	for i := range parent {
		parent[i] = i
	}
	find := func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	for _, rw := range s.rows {
		first := -1
		for _, v := range rw.vars {
			if s.fixed[v] {
				continue
			}
			if first < 0 {
				first = v
				continue
			}
			a, b := find(first), find(v)
			if a != b {
				parent[a] = b
			}
		}
	}
	s.comp = make([]int, len(s.lo))
	for i := range s.comp {
		s.comp[i] = find(i)
	}
}

// componentsOf returns the connected components of the unknowns of a
// cell's atoms (none when all of them are published exactly).
func (s *system) componentsOf(c Cell) map[int]bool {
	comps := map[int]bool{}
	for _, a := range atomsOf(s.r.Dims, c.Coord) {
		if v := c.Population*s.nAtoms + a; !s.fixed[v] {
			comps[s.comp[v]] = true
		}
	}
	return comps
}

// reaches tells whether an unknown of a cell's atoms is in one of comps.
func (s *system) reaches(c Cell, comps map[int]bool) bool {
	for _, a := range atomsOf(s.r.Dims, c.Coord) {
		if v := c.Population*s.nAtoms + a; !s.fixed[v] && comps[s.comp[v]] {
			return true
		}
	}
	return false
}

func (s *system) interval(c Cell) (Interval, error) {
	as := atomsOf(s.r.Dims, c.Coord)
	target := make([]int, len(as))
	comps := map[int]bool{}
	for i, a := range as {
		target[i] = c.Population*s.nAtoms + a
		comps[s.comp[target[i]]] = true
	}
	var vars []int
	for v := range s.lo {
		if comps[s.comp[v]] && !s.fixed[v] {
			vars = append(vars, v)
		}
	}
	var rows []row
	for _, rw := range s.rows {
		for _, v := range rw.vars {
			if !s.fixed[v] && comps[s.comp[v]] {
				rows = append(rows, rw)
				break
			}
		}
	}
	keys := make([]int, 0, len(comps))
	for k := range comps {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	p, err := s.partFor(fmt.Sprint(keys), vars, rows)
	if err != nil {
		return Interval{}, err
	}
	minV, _ := s.optimise(p, target, 1)
	maxV, unbounded := s.optimise(p, target, -1)
	iv := Interval{Cell: c, Lo: int(math.Ceil(minV - 1e-6)), Unbounded: unbounded}
	if !unbounded {
		iv.Hi = int(math.Floor(-maxV + 1e-6))
	}
	return iv, nil
}

// part is the linear system of one connected part of the table, with a
// feasible basis found once.
type part struct {
	col  map[int]int // variable -> column
	used map[int]bool
	tab  *tableau
	cols int
	// a and b are the system as built, for the tests' second solver.
	a [][]float64
	b []float64
	// scratch is the copy of tab each objective is solved in.
	scratch *tableau
}

// partFor builds (once) the system over vars and rows: each unknown x is
// written lo+y (y >= 0); each bound and each side of a row gets its own
// slack column.
func (s *system) partFor(key string, vars []int, rows []row) (*part, error) {
	if p, ok := s.parts[key]; ok {
		return p, nil
	}
	p := &part{col: map[int]int{}, used: map[int]bool{}}
	for i, v := range vars {
		p.col[v] = i
	}
	type eq struct {
		coef map[int]float64
		b    float64
	}
	var eqs []eq
	for _, v := range vars {
		if s.hi[v] >= 0 {
			eqs = append(eqs, eq{coef: map[int]float64{p.col[v]: 1}, b: s.hi[v] - s.lo[v]}) // y + u = hi-lo
		}
	}
	for _, rw := range rows {
		if rw.nest {
			// x0 <= x1: y0 - y1 + u = lo1 - lo0 (a fixed side is a constant)
			coef := map[int]float64{}
			if !s.fixed[rw.vars[0]] {
				coef[p.col[rw.vars[0]]] = 1
			}
			if !s.fixed[rw.vars[1]] {
				coef[p.col[rw.vars[1]]] = -1
			}
			eqs = append(eqs, eq{coef: coef, b: s.lo[rw.vars[1]] - s.lo[rw.vars[0]]})
			continue
		}
		shift := 0.0
		coef := map[int]float64{}
		for _, v := range rw.vars {
			shift += s.lo[v]
			if !s.fixed[v] {
				coef[p.col[v]]++
			}
		}
		// sum(y) >= lo - shift, written as -sum(y) + u = shift - lo.
		if rw.lo-shift > 0 {
			neg := map[int]float64{}
			for k, c := range coef {
				neg[k] = -c
			}
			eqs = append(eqs, eq{coef: neg, b: shift - rw.lo})
		}
		if rw.hi >= 0 {
			eqs = append(eqs, eq{coef: coef, b: rw.hi - shift})
		}
	}
	// Rows between published numbers alone say nothing about unknowns.
	kept := eqs[:0]
	for _, e := range eqs {
		if len(e.coef) > 0 {
			kept = append(kept, e)
		}
	}
	eqs = kept
	for _, e := range eqs {
		for k := range e.coef {
			p.used[k] = true
		}
	}
	p.cols = len(vars) + len(eqs)
	A := make([][]float64, len(eqs))
	b := make([]float64, len(eqs))
	basic := make([]int, len(eqs))
	for r, e := range eqs {
		A[r] = make([]float64, p.cols)
		f := 1.0
		if e.b < 0 {
			f = -1 // keep b >= 0; the slack then cannot start in the basis
		}
		for k, v := range e.coef {
			A[r][k] = f * v
		}
		A[r][len(vars)+r] = f
		b[r] = f * e.b
		basic[r] = len(vars) + r
		if f < 0 {
			basic[r] = -1
		}
	}
	tab, err := newTableau(A, b, basic)
	if err != nil {
		return nil, fmt.Errorf("disclosure: audit: %w", err)
	}
	p.tab, p.a, p.b = tab, A, b
	s.parts[key] = p
	return p, nil
}

// optimise minimises sign*sum(target) over a part.
func (s *system) optimise(p *part, target []int, sign float64) (float64, bool) {
	base := 0.0 // the objective's constant part
	c := make([]float64, p.cols)
	for _, v := range target {
		base += sign * s.lo[v]
		if s.fixed[v] {
			continue
		}
		j, ok := p.col[v]
		if !ok || !p.used[j] {
			// Free above and in no equation.
			if sign < 0 {
				return 0, true
			}
			continue
		}
		c[j] += sign
	}
	p.scratch = p.tab.copyTo(p.scratch)
	opt, unbounded := p.scratch.solve(c, p.cols)
	if unbounded {
		return 0, true
	}
	return base + opt, false
}
