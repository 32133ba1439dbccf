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

// clone copies the tableau so that solving one objective leaves it as it is.
func (t *tableau) clone() *tableau {
	c := &tableau{m: t.m, n: t.n, rows: make([][]float64, t.m), basis: append([]int(nil), t.basis...)}
	for i, r := range t.rows {
		c.rows[i] = append([]float64(nil), r...)
	}
	return c
}

// solve minimises c·x over the first `cols` columns from the current basis
// (phase two). It returns the optimum, or unbounded.
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
	for {
		// Reduced costs: c_j - sum_i c_basis(i) * a_ij.
		enter := -1
		for j := 0; j < cols; j++ {
			d := c[j]
			for i, r := range t.rows {
				if cb := c[t.basis[i]]; cb != 0 {
					d -= cb * r[j]
				}
			}
			if d < -eps {
				enter = j
				break
			}
		}
		if enter < 0 {
			v := 0.0
			for i, r := range t.rows {
				v += c[t.basis[i]] * r[rhs]
			}
			return v, false
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
	}
}
