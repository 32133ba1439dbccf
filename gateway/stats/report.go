package stats

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/migrant-health/mhg/conformance/measures"
	"github.com/migrant-health/mhg/gateway/disclosure"
)

// Report is a released table: what disclosure control let through.
type Report struct {
	Measure *measures.Measure
	Period  measures.Period
	Strata  []string
	// Categories are the categories of each stratum, in table order.
	Categories [][]string
	Release    *disclosure.Release
	// Failed names the sources that could not contribute.
	Failed []string
	// Refused names the sources the policy did not permit for this
	// request: their counts are left out too.
	Refused []string
	// Grain is the period grain the terms set (month, quarter, year);
	// empty when none was applied.
	Grain string
}

// Release builds the table of the merged counts and protects it.
func Release(m *measures.Measure, period measures.Period, strata []string, counts Counts, rules disclosure.Rules) (*Report, error) {
	cats := counts.Categories(len(strata))
	dims := make([]int, len(strata))
	index := make([]map[string]int, len(strata))
	for d, cs := range cats {
		dims[d] = len(cs)
		index[d] = map[string]int{}
		for i, c := range cs {
			index[d][c] = i
		}
	}
	t := disclosure.Table{Nested: true, Dims: dims}
	n := 1
	for _, d := range dims {
		n *= d
	}
	for _, p := range m.Populations {
		t.Populations = append(t.Populations, p.Code)
		t.Counts = append(t.Counts, make([]int, n))
	}
	if len(strata) > 0 && len(counts) == 0 {
		// No one in any stratum: a table with no categories has only its
		// (zero) totals.
		t.Dims = nil
		for p := range t.Counts {
			t.Counts[p] = []int{0}
		}
	}
	for key, c := range counts {
		a := 0
		if len(strata) > 0 {
			for d, cat := range strings.Split(key, "\x00") {
				a = a*dims[d] + index[d][cat]
			}
		}
		for p := range c {
			t.Counts[p][a] += c[p]
		}
	}
	rel, err := disclosure.Protect(t, rules)
	if err != nil {
		return nil, err
	}
	if t.Dims == nil {
		cats = make([][]string, len(strata))
	}
	return &Report{Measure: m, Period: period, Strata: strata, Categories: cats, Release: rel}, nil
}

const (
	sysPopulation = "http://terminology.hl7.org/CodeSystem/measure-population"
	extDAR        = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
	// ExtIncomplete marks a MeasureReport some source could not contribute
	// to; the contained OperationOutcome names them.
	ExtIncomplete = "https://fhir.migrant-health.org/mhp/StructureDefinition/mhp-report-incomplete"
	// ExtDisclosure carries the disclosure terms a MeasureReport was
	// released under: k (valueInteger), rounding (valueInteger, 0 for
	// none) and grain (valueCode).
	ExtDisclosure = "https://fhir.migrant-health.org/mhp/StructureDefinition/mhp-disclosure-control"
)

// MeasureReport renders the report as an R4 MeasureReport (type summary):
// the populations, and stratifiers shaped as IHE mADX does, one per
// requested stratum and, for two strata, one over both, with one stratum
// per combination and its components. Masked counts carry
// data-absent-reason "masked"; a proportion's score is given only where both
// its counts are published.
func (r *Report) MeasureReport(id string, now time.Time) ([]byte, error) {
	rel := r.Release
	pops := rel.Populations
	popJSON := func(coord []int) ([]any, [2]float64, bool) {
		var out []any
		var num, den float64
		scored := true
		for p, code := range pops {
			v := rel.Lookup(disclosure.Cell{Population: p, Coord: coord})
			e := map[string]any{"code": map[string]any{"coding": []any{map[string]any{"system": sysPopulation, "code": code}}}}
			if v.Masked {
				e["_count"] = map[string]any{"extension": []any{map[string]any{"url": extDAR, "valueCode": "masked"}}}
				scored = false
			} else {
				e["count"] = v.Count
			}
			switch code {
			case measures.Denominator:
				den = float64(v.Count)
			case measures.Numerator:
				num = float64(v.Count)
			}
			out = append(out, e)
		}
		return out, [2]float64{num, den}, scored && den > 0
	}
	all := make([]int, len(rel.Dims))
	for i := range all {
		all[i] = disclosure.All
	}
	groupPops, nd, scored := popJSON(all)
	group := map[string]any{"population": groupPops}
	proportion := r.Measure.Scoring == measures.ScoringProportion
	if proportion && scored {
		group["measureScore"] = map[string]any{"value": round4(nd[0] / nd[1])}
	}
	var stratifiers []any
	// One stratifier per stratum, then (two-way) one over both.
	sets := [][]int{}
	for d := range r.Strata {
		sets = append(sets, []int{d})
	}
	if len(rel.Dims) == 2 {
		sets = append(sets, []int{0, 1})
	}
	for _, dims := range sets {
		var codes []any
		for _, d := range dims {
			codes = append(codes, map[string]any{"coding": []any{map[string]any{"system": measures.CSStratifier, "code": r.Strata[d]}}})
		}
		var strata []any
		var walk func(coord []int, k int)
		walk = func(coord []int, k int) {
			if k == len(dims) {
				ps, nd, scored := popJSON(coord)
				var comps []any
				for _, d := range dims {
					comps = append(comps, map[string]any{
						"code":  map[string]any{"coding": []any{map[string]any{"system": measures.CSStratifier, "code": r.Strata[d]}}},
						"value": measures.Concept(r.Strata[d], r.Categories[d][coord[d]]),
					})
				}
				s := map[string]any{"component": comps, "population": ps}
				if proportion && scored {
					s["measureScore"] = map[string]any{"value": round4(nd[0] / nd[1])}
				}
				strata = append(strata, s)
				return
			}
			d := dims[k]
			for c := range rel.Dims[d] {
				next := append([]int(nil), coord...)
				next[d] = c
				walk(next, k+1)
			}
		}
		if len(rel.Dims) > 0 {
			walk(all, 0)
		}
		stratifiers = append(stratifiers, map[string]any{"code": codes, "stratum": strata})
	}
	if len(stratifiers) > 0 && len(rel.Dims) > 0 {
		group["stratifier"] = stratifiers
	}
	mr := map[string]any{
		"resourceType": "MeasureReport",
		"id":           id,
		"status":       "complete",
		"type":         "summary",
		"measure":      r.Measure.URL + "|" + r.Measure.Version,
		"date":         now.UTC().Format(time.RFC3339),
		"period":       map[string]any{"start": r.Period.Start.Format(time.DateOnly), "end": r.Period.End.Format(time.DateOnly)},
		"group":        []any{group},
	}
	terms := []any{
		map[string]any{"url": "k", "valueInteger": rel.Rules.K},
		map[string]any{"url": "rounding", "valueInteger": rel.Rules.Rounding},
	}
	if r.Grain != "" {
		terms = append(terms, map[string]any{"url": "grain", "valueCode": r.Grain})
	}
	ext := []any{map[string]any{"url": ExtDisclosure, "extension": terms}}
	if len(r.Failed)+len(r.Refused) > 0 {
		var issues []any
		for _, s := range r.Failed {
			issues = append(issues, map[string]any{"severity": "warning", "code": "incomplete",
				"diagnostics": "source " + s + " could not contribute; the counts leave it out"})
		}
		for _, s := range r.Refused {
			issues = append(issues, map[string]any{"severity": "warning", "code": "forbidden",
				"diagnostics": "source " + s + " was not asked: the agreements do not permit this request of it; the counts leave it out"})
		}
		mr["contained"] = []any{map[string]any{"resourceType": "OperationOutcome", "id": "incomplete", "issue": issues}}
		ext = append(ext, map[string]any{"url": ExtIncomplete, "valueReference": map[string]any{"reference": "#incomplete"}})
	}
	mr["extension"] = ext
	return json.Marshal(mr)
}

func round4(x float64) float64 {
	return float64(int(x*10000+0.5)) / 10000
}

// AllCategories is the category a CSV row shows for a margin (every
// category of that stratum).
const AllCategories = "all"

// CSV renders the released table: one row per published cell set (the
// total, the margins, then every combination), a column per stratum, and
// per population its count and a flag column that says "masked" where the
// count is withheld (its count cell is then empty).
func (r *Report) CSV() []byte {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	rel := r.Release
	head := append([]string(nil), r.Strata...)
	for _, p := range rel.Populations {
		head = append(head, p, p+"-flag")
	}
	_ = w.Write(head)
	cells := disclosure.Cells(1, rel.Dims)
	for _, c := range cells {
		row := make([]string, 0, len(head))
		for d := range r.Strata {
			if d >= len(c.Coord) || c.Coord[d] == disclosure.All {
				row = append(row, AllCategories)
			} else {
				row = append(row, r.Categories[d][c.Coord[d]])
			}
		}
		for p := range rel.Populations {
			v := rel.Lookup(disclosure.Cell{Population: p, Coord: c.Coord})
			if v.Masked {
				row = append(row, "", "masked")
			} else {
				row = append(row, strconv.Itoa(v.Count), "")
			}
		}
		_ = w.Write(row)
	}
	w.Flush()
	return buf.Bytes()
}
