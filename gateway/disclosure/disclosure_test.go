package disclosure

import (
	"errors"
	"math/rand/v2"
	"testing"
)

func oneWay(counts ...int) Table {
	return Table{Populations: []string{"initial-population"}, Dims: []int{len(counts)}, Counts: [][]int{counts}}
}

// A single small cell in a row with a published total would be recovered
// by subtraction: a second cell is masked with it.
func TestComplementarySuppressionOneWay(t *testing.T) {
	t.Parallel()
	rel, err := Protect(oneWay(3, 50, 40), Rules{K: 10})
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]bool{1: true, 3: true} // the 3 and the 40 (smallest of at least k)
	for i, v := range rel.Values {
		if v.Masked != want[i] {
			t.Errorf("cell %v masked=%v, want %v", v.Cell, v.Masked, want[i])
		}
	}
	if got := rel.Lookup(Cell{Coord: []int{All}}); got.Masked || got.Count != 93 {
		t.Errorf("total %+v", got)
	}
	ivs, err := Audit(rel)
	if err != nil {
		t.Fatal(err)
	}
	for _, iv := range ivs {
		if iv.Lo != 0 || iv.Hi != 43 || iv.Unbounded {
			t.Errorf("interval %+v, want [0, 43]", iv)
		}
	}
	if err := Check(rel); err != nil {
		t.Error(err)
	}
}

// The auditor finds what primary suppression alone leaves open.
func TestAuditCatchesRecoverableCell(t *testing.T) {
	t.Parallel()
	rel := &Release{Populations: []string{"p"}, Dims: []int{3}, Rules: Rules{K: 10}, Values: []Value{
		{Cell: Cell{Coord: []int{All}}, Count: 93},
		{Cell: Cell{Coord: []int{0}}, Masked: true},
		{Cell: Cell{Coord: []int{1}}, Count: 50},
		{Cell: Cell{Coord: []int{2}}, Count: 40},
	}}
	ivs, err := Audit(rel)
	if err != nil {
		t.Fatal(err)
	}
	if len(ivs) != 1 || ivs[0].Lo != 3 || ivs[0].Hi != 3 {
		t.Fatalf("intervals %+v, want the masked cell recovered as exactly 3", ivs)
	}
	if err := Check(rel); !errors.Is(err, ErrDisclosive) {
		t.Fatalf("Check: %v, want ErrDisclosive", err)
	}
}

// Two-way table: rows and columns and the total are published; a small
// cell needs a rectangle of masked cells, each with enough mass.
func TestTwoWay(t *testing.T) {
	t.Parallel()
	tab := Table{Populations: []string{"p"}, Dims: []int{2, 3}, Counts: [][]int{{3, 40, 25, 30, 12, 60}}}
	rel, err := Protect(tab, Rules{K: 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(rel); err != nil {
		t.Fatal(err)
	}
	masked := 0
	for _, v := range rel.Values {
		if v.Masked {
			masked++
		}
	}
	if masked < 4 {
		t.Errorf("%d masked cells; a lone small cell of a two-way table needs at least four", masked)
	}
}

// Nested populations: a numerator atom is bounded by its denominator.
func TestNestedPopulations(t *testing.T) {
	t.Parallel()
	tab := Table{Populations: []string{"denominator", "numerator"}, Nested: true, Dims: []int{2},
		Counts: [][]int{{12, 40}, {11, 20}}}
	rel, err := Protect(tab, Rules{K: 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(rel); err != nil {
		t.Fatal(err)
	}
	// The numerator's 11 is publishable on its own, but with the
	// denominator's 12 and the numerator total 31 published, 31-20=11 is not
	// a problem; what must hold is that no masked cell is narrow.
	for _, v := range rel.Values {
		if !v.Masked && v.Count > 0 && v.Count < 10 {
			t.Errorf("published %d", v.Count)
		}
	}
}

func TestRounding(t *testing.T) {
	t.Parallel()
	rel, err := Protect(oneWay(12, 27, 0, 33), Rules{K: 10, Rounding: 5})
	if err != nil {
		t.Fatal(err)
	}
	want := []int{70, 10, 25, 0, 35}
	for i, v := range rel.Values {
		if v.Masked || v.Count != want[i] {
			t.Errorf("cell %d: %+v, want %d", i, v, want[i])
		}
	}
	if err := Check(rel); err != nil {
		t.Error(err)
	}
	// k=10 with base 3: 10 rounds to 9, below k: published as 12.
	if got := roundTo(10, 3, 10); got != 12 {
		t.Errorf("roundTo(10, 3, 10) = %d, want 12", got)
	}
}

func TestShapeErrors(t *testing.T) {
	t.Parallel()
	for name, tab := range map[string]Table{
		"three dims":   {Populations: []string{"p"}, Dims: []int{1, 1, 1}, Counts: [][]int{{1}}},
		"short counts": {Populations: []string{"p"}, Dims: []int{3}, Counts: [][]int{{1, 2}}},
		"negative":     {Populations: []string{"p"}, Counts: [][]int{{-1}}},
		"not nested":   {Populations: []string{"a", "b"}, Nested: true, Counts: [][]int{{1}, {2}}},
	} {
		if _, err := Protect(tab, Rules{}); !errors.Is(err, ErrShape) {
			t.Errorf("%s: %v, want ErrShape", name, err)
		}
	}
}

// randomTable draws a table like a measure's: nested populations, one or
// two dimensions, many small and zero counts.
func randomTable(r *rand.Rand) Table {
	ndims := r.IntN(3)
	dims := make([]int, ndims)
	for i := range dims {
		dims[i] = 1 + r.IntN(5)
	}
	n := atoms(dims)
	pops := 1 + r.IntN(3)
	t := Table{Dims: dims, Nested: true}
	prev := make([]int, n)
	for p := 0; p < pops; p++ {
		t.Populations = append(t.Populations, "p")
		c := make([]int, n)
		for a := range c {
			if p == 0 {
				switch r.IntN(4) {
				case 0:
				case 1:
					c[a] = 1 + r.IntN(9)
				default:
					c[a] = r.IntN(80)
				}
			} else {
				c[a] = r.IntN(prev[a] + 1)
			}
		}
		t.Counts = append(t.Counts, c)
		prev = c
	}
	return t
}

// Every release of random tables passes the auditor's check and publishes
// no count in 1..k-1.
func TestProtectRandomTables(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 300; i++ {
		tab := randomTable(r)
		rules := Rules{K: []int{5, 10, 20}[r.IntN(3)], Rounding: []int{0, 0, 5}[r.IntN(3)]}
		rel, err := Protect(tab, rules)
		if err != nil {
			t.Fatalf("table %d %+v: %v", i, tab, err)
		}
		if err := Check(rel); err != nil {
			t.Fatalf("table %d %+v %+v: %v", i, tab, rules, err)
		}
	}
}

// No complementary mask is needless: publishing any one masked cell of at
// least k (a complement, never a primary) fails the auditor's check.
func TestNoNeedlessComplement(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	complements := 0
	for i := 0; i < 60; i++ {
		tab := randomTable(r)
		rules := Rules{K: []int{5, 10}[r.IntN(2)], Rounding: []int{0, 5}[r.IntN(2)]}
		rel, err := Protect(tab, rules)
		if err != nil {
			t.Fatal(err)
		}
		cells := Cells(len(tab.Populations), tab.Dims)
		for j, v := range rel.Values {
			truth := 0
			for _, a := range atomsOf(tab.Dims, cells[j].Coord) {
				truth += tab.Counts[cells[j].Population][a]
			}
			if !v.Masked || truth < rel.Rules.K {
				continue
			}
			complements++
			try := *rel
			try.Values = append([]Value(nil), rel.Values...)
			try.Values[j] = Value{Cell: v.Cell, Count: roundTo(truth, rel.Rules.Rounding, rel.Rules.K)}
			if Check(&try) == nil {
				t.Errorf("table %d %+v %+v: cell %v (%d) is masked, but the table passes without the mask", i, tab, rules, v.Cell, truth)
			}
		}
	}
	if complements == 0 {
		t.Fatal("no complementary suppression in any table: the test proves nothing")
	}
}

func FuzzProtect(f *testing.F) {
	f.Add(uint64(1), uint64(2))
	f.Add(uint64(7), uint64(99))
	f.Fuzz(func(t *testing.T, a, b uint64) {
		r := rand.New(rand.NewPCG(a, b))
		tab := randomTable(r)
		rules := Rules{K: 2 + r.IntN(20), Rounding: r.IntN(11)}
		rel, err := Protect(tab, rules)
		if err != nil {
			t.Fatalf("%+v %+v: %v", tab, rules, err)
		}
		if err := Check(rel); err != nil {
			t.Fatalf("%+v %+v: %v", tab, rules, err)
		}
	})
}
