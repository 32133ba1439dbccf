package disclosure

import (
	"math/rand/v2"
	"testing"
)

// demoShapedTable is shaped like the largest table of the demo: a
// prevalence (initial population, denominator, numerator, nested) by sex
// (3) and 5-year age band (15), so 3 x 4 x 16 = 192 cells, with a few
// thousand people and a numerator of about one in eight: many small cells.
func demoShapedTable(seed uint64) Table {
	r := rand.New(rand.NewPCG(seed, 1))
	dims := []int{3, 15}
	n := atoms(dims)
	t := Table{Populations: []string{"initial-population", "denominator", "numerator"}, Nested: true, Dims: dims}
	ip := make([]int, n)
	for a := range ip {
		if a/15 == 2 { // the third sex category is rare
			ip[a] = r.IntN(4)
			continue
		}
		ip[a] = 20 + r.IntN(120)
	}
	den := make([]int, n)
	num := make([]int, n)
	for a := range den {
		den[a] = ip[a] - r.IntN(ip[a]/10+1)
		num[a] = r.IntN(den[a]/4 + 1)
	}
	t.Counts = [][]int{ip, den, num}
	return t
}

// BenchmarkProtect protects demo-shaped tables (k 10), with and without
// rounding to 5, and reports the masked cells per table.
func BenchmarkProtect(b *testing.B) {
	for _, tc := range []struct {
		name  string
		rules Rules
	}{{"k10", Rules{K: 10}}, {"k10-round5", Rules{K: 10, Rounding: 5}}} {
		b.Run(tc.name, func(b *testing.B) {
			masked := 0
			seed := uint64(0)
			for b.Loop() {
				seed++
				rel, err := Protect(demoShapedTable(seed%4), tc.rules)
				if err != nil {
					b.Fatal(err)
				}
				for _, v := range rel.Values {
					if v.Masked {
						masked++
					}
				}
			}
			b.ReportMetric(float64(masked)/float64(b.N), "masked/table")
		})
	}
}
