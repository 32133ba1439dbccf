package disclosure

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/optimize/convex/lp"
)

// The tableau simplex gives the optimum gonum's simplex gives, on every
// linear program the auditor builds for random tables.
func TestSimplexAgreesWithGonum(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	compared := 0
	for i := 0; i < 25; i++ {
		tab := randomTable(r)
		rel, err := Protect(tab, Rules{K: 10, Rounding: []int{0, 5}[r.IntN(2)]})
		if err != nil {
			t.Fatal(err)
		}
		sys, err := newSystem(rel)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Audit(rel); err != nil {
			t.Fatal(err)
		}
		cells := Cells(len(rel.Populations), rel.Dims)
		for ci, v := range rel.Values {
			if !v.Masked {
				continue
			}
			if _, err := sys.interval(cells[ci]); err != nil {
				t.Fatal(err)
			}
		}
		for _, p := range sys.parts {
			if len(p.a) == 0 {
				continue
			}
			for j := 0; j < p.cols; j += 1 + p.cols/6 {
				for _, sign := range []float64{1, -1} {
					c := make([]float64, p.cols)
					c[j] = sign
					got, unb := p.tab.copyTo(nil).solve(c, p.cols)
					A := mat.NewDense(len(p.a), p.cols, nil)
					for i, row := range p.a {
						A.SetRow(i, row)
					}
					want, _, err := lp.Simplex(c, A, p.b, 1e-10, nil)
					switch {
					case errors.Is(err, lp.ErrUnbounded):
						if !unb {
							t.Fatalf("gonum: unbounded, tableau: %v", got)
						}
					case errors.Is(err, lp.ErrSingular), errors.Is(err, lp.ErrZeroColumn):
						continue // gonum refuses some systems the tableau solves
					case err != nil:
						t.Fatalf("gonum: %v", err)
					default:
						if unb || math.Abs(got-want) > 1e-6 {
							t.Fatalf("column %d sign %v: tableau %v (unbounded %v), gonum %v", j, sign, got, unb, want)
						}
						compared++
					}
				}
			}
		}
	}
	if compared < 40 {
		t.Fatalf("only %d programs compared", compared)
	}
}
