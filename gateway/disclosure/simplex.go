package disclosure

import "errors"

// The auditor's linear programs are small (the unknown cells of one
// connected part of a table) and many (two per masked cell, all over the
// same constraints). gonum's lp.Simplex refactorises the basis at every
// step and finds a first basis anew for each program, which made an audit
// of a few hundred random tables take minutes; this dense tableau simplex
// finds a feasible basis once per part and then solves each objective from
// it. Bland's rule (lowest index enters, lowest basic index leaves on ties)
// rules out cycling, so every program ends; the numbers are small integers,
// and a tolerance of 1e-9 separates zero from not.

const eps = 1e-9

var errInfeasible = errors.New("the published numbers contradict each other")

// tableau holds [A | b] for A x = b, x >= 0, with one basic column per row.
type tableau struct {
	m, n  int
	rows  [][]float64 // m rows of n+1 (the last is b)
	basis []int
	// cells backs the rows of a copy (copyTo), so that a copy reuses one
	// block of memory.
	cells []float64
}

// newTableau finds a basic feasible solution of A x = b (b >= 0). basic[i]
// names a column that is a unit column for row i (a slack with +1), or -1;
// rows without one get an artificial column for phase one.
func newTableau(A [][]float64, b []float64, basic []int) (*tableau, error) {
	m := len(A)
	n := 0
	if m > 0 {
		n = len(A[0])
	}
	var art []int
	for i := range basic {
		if basic[i] < 0 {
			art = append(art, i)
		}
	}
	cols := n + len(art)
	t := &tableau{m: m, n: cols, rows: make([][]float64, m), basis: make([]int, m)}
	for i := range A {
		r := make([]float64, cols+1)
		copy(r, A[i])
		r[cols] = b[i]
		t.rows[i] = r
		t.basis[i] = basic[i]
	}
	for j, i := range art {
		t.rows[i][n+j] = 1
		t.basis[i] = n + j
	}
	if len(art) > 0 {
		c := make([]float64, cols)
		for j := range art {
			c[n+j] = 1
		}
		v, _ := t.solve(c, cols)
		if v > 1e-7 {
			return nil, errInfeasible
		}
		// Drive artificials out of the basis; a row with no other pivot is
		// redundant and goes.
		keep := t.rows[:0]
		var keepBasis []int
		for i, r := range t.rows {
			if t.basis[i] < n {
				keep = append(keep, r)
				keepBasis = append(keepBasis, t.basis[i])
				continue
			}
			for j := 0; j < n; j++ {
				if abs(r[j]) > eps {
					t.pivot(i, j)
					keep = append(keep, r)
					keepBasis = append(keepBasis, j)
					break
				}
			}
		}
		t.rows, t.basis, t.m = keep, keepBasis, len(keep)
		for i := range t.rows {
			t.rows[i][n] = t.rows[i][cols]
			t.rows[i] = t.rows[i][:n+1]
		}
		t.n = n
	}
	return t, nil
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// pivot makes column j basic in row i.
func (t *tableau) pivot(i, j int) {
	pr := t.rows[i]
	p := pr[j]
	for k := range pr {
		pr[k] /= p
	}
	for r, row := range t.rows {
		if r == i {
			continue
		}
		f := row[j]
		if f == 0 {
			continue
		}
		for k := range row {
			row[k] -= f * pr[k]
		}
	}
	t.basis[i] = j
}

// copyTo copies the tableau into dst (reusing dst's memory when it is
// large enough) so that solving one objective leaves t as it is, and
// returns the copy.
func (t *tableau) copyTo(dst *tableau) *tableau {
	if dst == nil {
		dst = &tableau{}
	}
	width := 0
	if t.m > 0 {
		width = len(t.rows[0])
	}
	if cap(dst.cells) < t.m*width {
		dst.cells = make([]float64, t.m*width)
	}
	dst.cells = dst.cells[:t.m*width]
	dst.m, dst.n = t.m, t.n
	dst.rows = dst.rows[:0]
	for i, r := range t.rows {
		row := dst.cells[i*width : (i+1)*width : (i+1)*width]
		copy(row, r)
		dst.rows = append(dst.rows, row)
	}
	dst.basis = append(dst.basis[:0], t.basis...)
	return dst
}

// solve minimises c·x over the first `cols` columns from the current basis
// (phase two). It returns the optimum, or unbounded. The reduced costs
// are computed once and then carried through each pivot, as the
// objective row of a textbook tableau.
func (t *tableau) solve(c []float64, cols int) (float64, bool) {
	if len(t.rows) == 0 {
		for j := 0; j < cols; j++ {
			if c[j] < -eps {
				return 0, true
			}
		}
		return 0, false
	}
	rhs := len(t.rows[0]) - 1
	// d[j] = c_j - sum_i c_basis(i) * a_ij; d[rhs] is minus the value.
	d := make([]float64, rhs+1)
	copy(d, c[:min(len(c), rhs)])
	for i, r := range t.rows {
		if cb := c[t.basis[i]]; cb != 0 {
			for k, a := range r {
				d[k] -= cb * a
			}
		}
	}
	for {
		enter := -1
		for j := 0; j < cols; j++ {
			if d[j] < -eps {
				enter = j
				break
			}
		}
		if enter < 0 {
			return -d[rhs], false
		}
		leave := -1
		best := 0.0
		for i, r := range t.rows {
			if r[enter] > eps {
				ratio := r[rhs] / r[enter]
				if leave < 0 || ratio < best-eps || (abs(ratio-best) <= eps && t.basis[i] < t.basis[leave]) {
					leave, best = i, ratio
				}
			}
		}
		if leave < 0 {
			return 0, true
		}
		t.pivot(leave, enter)
		if f := d[enter]; f != 0 {
			for k, a := range t.rows[leave] {
				d[k] -= f * a
			}
		}
	}
}
