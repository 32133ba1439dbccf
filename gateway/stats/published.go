package stats

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/migrant-health/mhg/gateway/disclosure"
)

// ErrNotAReport: the document is not a MeasureReport this gateway renders.
var ErrNotAReport = errors.New("not a summary MeasureReport of the gateway")

type publishedPopulation struct {
	Code struct {
		Coding []struct{ Code string } `json:"coding"`
	} `json:"code"`
	Count      *int `json:"count"`
	CountShape *struct {
		Extension []struct {
			URL       string `json:"url"`
			ValueCode string `json:"valueCode"`
		} `json:"extension"`
	} `json:"_count"`
}

type publishedReport struct {
	ResourceType string `json:"resourceType"`
	Type         string `json:"type"`
	Extension    []struct {
		URL       string `json:"url"`
		Extension []struct {
			URL          string `json:"url"`
			ValueInteger *int   `json:"valueInteger"`
		} `json:"extension"`
	} `json:"extension"`
	Group []struct {
		Population []publishedPopulation `json:"population"`
		Stratifier []struct {
			Code    []json.RawMessage `json:"code"`
			Stratum []struct {
				Component []struct {
					Value json.RawMessage `json:"value"`
				} `json:"component"`
				Population []publishedPopulation `json:"population"`
			} `json:"stratum"`
		} `json:"stratifier"`
	} `json:"group"`
}

// PublishedRelease reads back, from a MeasureReport as it was sent (JSON),
// the table an attacker sees: the populations, every published count and
// masked cell, and the disclosure terms of its extension. It is the
// auditor's side of disclosure control: disclosure.Check on the result
// judges what left, not what the gateway meant to send.
func PublishedRelease(b []byte) (*disclosure.Release, error) {
	var mr publishedReport
	if err := json.Unmarshal(b, &mr); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotAReport, err)
	}
	if mr.ResourceType != "MeasureReport" || mr.Type != "summary" || len(mr.Group) != 1 {
		return nil, ErrNotAReport
	}
	rel := &disclosure.Release{}
	for _, e := range mr.Extension {
		if e.URL != ExtDisclosure {
			continue
		}
		for _, x := range e.Extension {
			if x.ValueInteger == nil {
				continue
			}
			switch x.URL {
			case "k":
				rel.Rules.K = *x.ValueInteger
			case "rounding":
				rel.Rules.Rounding = *x.ValueInteger
			}
		}
	}
	if rel.Rules.K == 0 {
		return nil, fmt.Errorf("%w: no disclosure terms", ErrNotAReport)
	}
	g := mr.Group[0]
	for _, p := range g.Population {
		if len(p.Code.Coding) == 0 {
			return nil, fmt.Errorf("%w: a population without a code", ErrNotAReport)
		}
		rel.Populations = append(rel.Populations, p.Code.Coding[0].Code)
	}
	// Populations nest (a numerator within its denominator within the
	// initial population), and an attacker knows it.
	rel.Nested = len(rel.Populations) > 1
	// One-way stratifiers give the dimensions and their category order.
	cats := []map[string]int{}
	for _, st := range g.Stratifier {
		if len(st.Code) != 1 {
			continue
		}
		idx := map[string]int{}
		for i, s := range st.Stratum {
			if len(s.Component) != 1 {
				return nil, fmt.Errorf("%w: a one-way stratum with %d components", ErrNotAReport, len(s.Component))
			}
			idx[string(s.Component[0].Value)] = i
		}
		rel.Dims = append(rel.Dims, len(st.Stratum))
		cats = append(cats, idx)
	}
	if len(rel.Dims) > 2 {
		return nil, fmt.Errorf("%w: %d stratifiers", ErrNotAReport, len(rel.Dims))
	}
	cells := disclosure.Cells(len(rel.Populations), rel.Dims)
	rel.Values = make([]disclosure.Value, len(cells))
	seen := make([]bool, len(cells))
	set := func(coord []int, pops []publishedPopulation) error {
		if len(pops) != len(rel.Populations) {
			return fmt.Errorf("%w: %d populations in a stratum, want %d", ErrNotAReport, len(pops), len(rel.Populations))
		}
		for p, pop := range pops {
			c := disclosure.Cell{Population: p, Coord: coord}
			i := rel.Index(c)
			v := disclosure.Value{Cell: c}
			switch {
			case pop.Count != nil:
				v.Count = *pop.Count
			case pop.CountShape != nil && len(pop.CountShape.Extension) == 1 && pop.CountShape.Extension[0].ValueCode == "masked":
				v.Masked = true
			default:
				return fmt.Errorf("%w: a count neither published nor masked", ErrNotAReport)
			}
			rel.Values[i], seen[i] = v, true
		}
		return nil
	}
	all := make([]int, len(rel.Dims))
	for i := range all {
		all[i] = disclosure.All
	}
	if err := set(all, g.Population); err != nil {
		return nil, err
	}
	d := 0
	for _, st := range g.Stratifier {
		for _, s := range st.Stratum {
			coord := append([]int(nil), all...)
			if len(st.Code) == 1 {
				coord[d] = cats[d][string(s.Component[0].Value)]
			} else {
				if len(s.Component) != len(rel.Dims) {
					return nil, fmt.Errorf("%w: a two-way stratum with %d components", ErrNotAReport, len(s.Component))
				}
				for k, comp := range s.Component {
					c, ok := cats[k][string(comp.Value)]
					if !ok {
						return nil, fmt.Errorf("%w: a two-way stratum names a category no one-way stratum has", ErrNotAReport)
					}
					coord[k] = c
				}
			}
			if err := set(coord, s.Population); err != nil {
				return nil, err
			}
		}
		if len(st.Code) == 1 {
			d++
		}
	}
	for i, ok := range seen {
		if !ok {
			return nil, fmt.Errorf("%w: cell %v is missing", ErrNotAReport, cells[i])
		}
	}
	return rel, nil
}

// tableReport is what WriteTable reads of a MeasureReport.
type tableReport struct {
	Measure string `json:"measure"`
	Period  struct {
		Start string `json:"start"`
		End   string `json:"end"`
	} `json:"period"`
	Contained []struct {
		Issue []struct {
			Diagnostics string `json:"diagnostics"`
		} `json:"issue"`
	} `json:"contained"`
	Group []struct {
		Population []publishedPopulation `json:"population"`
		Stratifier []struct {
			Code []struct {
				Coding []struct{ Code string } `json:"coding"`
			} `json:"code"`
			Stratum []struct {
				Component []struct {
					Value struct {
						Text string `json:"text"`
					} `json:"value"`
				} `json:"component"`
				Population []publishedPopulation `json:"population"`
			} `json:"stratum"`
		} `json:"stratifier"`
	} `json:"group"`
}

// MaskedText is how WriteTable shows a masked count.
const MaskedText = "masked"

func countText(p publishedPopulation) string {
	if p.Count != nil {
		return fmt.Sprint(*p.Count)
	}
	return MaskedText
}

// WriteTable prints a MeasureReport as the gateway sends it as a table for
// people: a row for the total and one per stratum of every stratifier
// (categories by code, "all" for a margin), a column per population, masked
// counts shown as "masked"; then the period, the disclosure terms and the
// sources the counts leave out.
func WriteTable(w io.Writer, b []byte) error {
	rel, err := PublishedRelease(b)
	if err != nil {
		return err
	}
	var mr tableReport
	if err := json.Unmarshal(b, &mr); err != nil {
		return fmt.Errorf("%w: %v", ErrNotAReport, err)
	}
	g := mr.Group[0]
	var strata []string
	for _, st := range g.Stratifier {
		if len(st.Code) == 1 && len(st.Code[0].Coding) > 0 {
			strata = append(strata, st.Code[0].Coding[0].Code)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(cells []string) { fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t") }
	head := append(append([]string(nil), strata...), rel.Populations...)
	row(head)
	total := make([]string, len(strata), len(head))
	for i := range total {
		total[i] = AllCategories
	}
	for _, p := range g.Population {
		total = append(total, countText(p))
	}
	row(total)
	for _, st := range g.Stratifier {
		for _, s := range st.Stratum {
			cells := make([]string, len(strata))
			for i := range cells {
				cells[i] = AllCategories
			}
			for k, comp := range s.Component {
				// Every category's text is its code (measures.Concept).
				code := comp.Value.Text
				d := k
				if len(st.Code) == 1 {
					d = slices.Index(strata, st.Code[0].Coding[0].Code)
				}
				if d >= 0 && d < len(cells) {
					cells[d] = code
				}
			}
			for _, p := range s.Population {
				cells = append(cells, countText(p))
			}
			row(cells)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%s, %s to %s\nmasked: counts from 1 to %d are withheld, and others so that none can be derived; ", mr.Measure, mr.Period.Start, mr.Period.End, rel.Rules.K-1)
	if rel.Rules.Rounding > 1 {
		fmt.Fprintf(w, "counts rounded to %d\n", rel.Rules.Rounding)
	} else {
		fmt.Fprintln(w, "counts not rounded")
	}
	for _, c := range mr.Contained {
		for _, is := range c.Issue {
			fmt.Fprintln(w, "incomplete:", is.Diagnostics)
		}
	}
	return nil
}
