package disclosure

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/protect.golden from the current Protect")

// TestProtectGolden pins the releases Protect makes of a fixed set of
// tables (random ones of every shape, and tables shaped like the demo's
// largest): a change to the suppression that changes what is published
// shows here as a diff, to be read and then accepted with -update.
func TestProtectGolden(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 60 {
		tab := randomTable(r)
		rules := Rules{K: []int{5, 10, 20}[r.IntN(3)], Rounding: []int{0, 0, 5}[r.IntN(3)]}
		writeRelease(t, &b, fmt.Sprintf("random %d", i), tab, rules)
	}
	for seed := uint64(1); seed <= 3; seed++ {
		for _, rules := range []Rules{{K: 10}, {K: 10, Rounding: 5}} {
			writeRelease(t, &b, fmt.Sprintf("demo-shaped %d", seed), demoShapedTable(seed), rules)
		}
	}
	path := filepath.Join("testdata", "protect.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./gateway/disclosure -run TestProtectGolden -update writes it)", err)
	}
	if got := b.String(); got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := range min(len(gl), len(wl)) {
			if gl[i] != wl[i] {
				t.Fatalf("line %d:\n got %s\nwant %s", i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("%d lines, want %d", len(gl), len(wl))
	}
}

// writeRelease writes one protected table: its shape and rules, then each
// cell as published (a count, or "masked").
func writeRelease(t *testing.T, b *strings.Builder, name string, tab Table, rules Rules) {
	t.Helper()
	rel, err := Protect(tab, rules)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if err := Check(rel); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	fmt.Fprintf(b, "%s: populations %d dims %v k %d rounding %d\n", name, len(tab.Populations), tab.Dims, rel.Rules.K, rel.Rules.Rounding)
	for _, v := range rel.Values {
		if v.Masked {
			fmt.Fprintf(b, "  %d %v masked\n", v.Population, v.Coord)
		} else {
			fmt.Fprintf(b, "  %d %v %d\n", v.Population, v.Coord, v.Count)
		}
	}
}
