package measures

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/migrant-health/mhg/conformance/r4"
)

//go:embed Measure-*.json ValueSet-*.json CodeSystem-*.json
var files embed.FS

// FS holds the shipped measures, their value sets and the strata code
// system, as FHIR R4 JSON files.
var FS fs.FS = files

// ErrInvalid is wrapped by every load error.
var ErrInvalid = errors.New("invalid measure")

// Population codes (http://terminology.hl7.org/CodeSystem/measure-population),
// in the order they nest: a denominator member is in the initial
// population, a numerator member in the denominator.
const (
	InitialPopulation = "initial-population"
	Denominator       = "denominator"
	Numerator         = "numerator"
)

// Scorings the evaluator supports.
const (
	ScoringCohort     = "cohort"
	ScoringProportion = "proportion"
)

// Measure is one compiled measure.
type Measure struct {
	// ID, URL, Version, Name and Title come from the Measure resource.
	ID, URL, Version, Name, Title string
	// Scoring is cohort or proportion.
	Scoring string
	// Sensitivity lists the v3-ActCode sensitivity labels in the Measure's
	// meta.security (HIV, ...): a protected class, for which agreements set
	// a stricter k.
	Sensitivity []string
	// Populations are the measure's populations in nesting order.
	Populations []Population
	// Types are the compartment types the criteria read, sorted.
	Types []string
	// Filters say what sources may filter on, by type (see Filter).
	Filters map[string]Filter
	// JSON is the Measure resource as shipped.
	JSON []byte
	// File is the file it was read from.
	File string
}

// Population is one population of a measure.
type Population struct {
	// Code is initial-population, denominator or numerator.
	Code string
	// Expression is the criterion as written.
	Expression string
	// Reads are the compartment types its criterion retrieves besides the
	// Patient, sorted; empty when it reads the Patient alone, so that it
	// can be decided before any other record of the patient is read.
	Reads []string
	prog  *node
}

// Period is a measurement period, whole days at both ends.
type Period struct {
	Start, End time.Time
}

// Catalogue is the set of shipped measures.
type Catalogue struct {
	measures map[string]*Measure
	sets     map[string]*ValueSet
	order    []string
}

// Load compiles the shipped measures.
func Load() (*Catalogue, error) { return LoadFS(FS) }

type measureJSON struct {
	ResourceType string `json:"resourceType"`
	ID           string `json:"id"`
	URL          string `json:"url"`
	Version      string `json:"version"`
	Name         string `json:"name"`
	Title        string `json:"title"`
	Meta         struct {
		Security []struct{ System, Code string } `json:"security"`
	} `json:"meta"`
	Scoring struct {
		Coding []struct{ System, Code string } `json:"coding"`
	} `json:"scoring"`
	Group []struct {
		Population []struct {
			Code struct {
				Coding []struct{ System, Code string } `json:"coding"`
			} `json:"code"`
			Criteria struct {
				Language   string `json:"language"`
				Expression string `json:"expression"`
			} `json:"criteria"`
		} `json:"population"`
	} `json:"group"`
}

// Language is the criteria language media type the Measures name.
const Language = "text/fhirpath"

// LoadFS compiles the measures of fsys (Measure-*.json, ValueSet-*.json at
// its root). Every problem is reported, each with its file and, for a
// criterion, the line and column in the file.
func LoadFS(fsys fs.FS) (*Catalogue, error) {
	c := &Catalogue{measures: map[string]*Measure{}, sets: map[string]*ValueSet{}}
	var problems []string
	vsFiles, _ := fs.Glob(fsys, "ValueSet-*.json")
	for _, name := range vsFiles {
		b, err := fs.ReadFile(fsys, name)
		if err == nil {
			_, err = r4.Parse(b)
		}
		var vs *ValueSet
		if err == nil {
			vs, err = compileValueSet(b)
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		c.sets[vs.URL] = vs
	}
	mFiles, _ := fs.Glob(fsys, "Measure-*.json")
	if len(mFiles) == 0 {
		problems = append(problems, "no Measure-*.json files")
	}
	for _, name := range mFiles {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		m, errs := c.compileMeasure(name, b)
		problems = append(problems, errs...)
		if m == nil {
			continue
		}
		if _, dup := c.measures[m.ID]; dup {
			problems = append(problems, fmt.Sprintf("%s: measure id %q used twice", name, m.ID))
			continue
		}
		c.measures[m.ID] = m
		c.order = append(c.order, m.ID)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w:\n  %s", ErrInvalid, strings.Join(problems, "\n  "))
	}
	sort.Strings(c.order)
	return c, nil
}

func (c *Catalogue) compileMeasure(file string, b []byte) (*Measure, []string) {
	if _, err := r4.Parse(b); err != nil {
		return nil, []string{fmt.Sprintf("%s: not a valid R4 resource: %v", file, err)}
	}
	var mj measureJSON
	if err := json.Unmarshal(b, &mj); err != nil || mj.ResourceType != "Measure" {
		return nil, []string{fmt.Sprintf("%s: not a Measure", file)}
	}
	var problems []string
	bad := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf("%s: %s", file, fmt.Sprintf(format, args...)))
	}
	if want := "Measure-" + mj.ID + ".json"; path.Base(file) != want {
		bad("the file of measure %q must be named %s", mj.ID, want)
	}
	if mj.URL == "" || mj.Version == "" {
		bad("url and version are required")
	}
	m := &Measure{ID: mj.ID, URL: mj.URL, Version: mj.Version, Name: mj.Name, Title: mj.Title, JSON: b, File: file}
	for _, s := range mj.Meta.Security {
		if s.System == "http://terminology.hl7.org/CodeSystem/v3-ActCode" {
			m.Sensitivity = append(m.Sensitivity, s.Code)
		}
	}
	for _, cd := range mj.Scoring.Coding {
		if cd.System == "http://terminology.hl7.org/CodeSystem/measure-scoring" {
			m.Scoring = cd.Code
		}
	}
	if m.Scoring != ScoringCohort && m.Scoring != ScoringProportion {
		bad("scoring must be measure-scoring cohort or proportion")
	}
	if len(mj.Group) != 1 {
		bad("a measure has exactly one group")
		return nil, problems
	}
	byCode := map[string]Population{}
	written := map[string]bool{} // populations given, compiled or not
	var all []retrieval
	for _, p := range mj.Group[0].Population {
		code := ""
		for _, cd := range p.Code.Coding {
			if cd.System == "http://terminology.hl7.org/CodeSystem/measure-population" {
				code = cd.Code
			}
		}
		expr := p.Criteria.Expression
		line, col := locate(b, expr)
		written[code] = true
		if code != InitialPopulation && code != Denominator && code != Numerator {
			problems = append(problems, errAt(file, line, col, "population code %q is not initial-population, denominator or numerator", code).Error())
			continue
		}
		if p.Criteria.Language != Language {
			problems = append(problems, errAt(file, line, col, "criteria %s: language must be %s", code, Language).Error())
			continue
		}
		prog, err := parse(expr)
		if err == nil {
			err = check(expr, prog, c.sets)
		}
		if err != nil {
			var se *SyntaxError
			if errors.As(err, &se) {
				l, cl := line+se.Line-1, se.Column
				if se.Line == 1 {
					cl = col + se.Column - 1
				}
				problems = append(problems, errAt(file, l, cl, "criteria %s: %s", code, se.Msg).Error())
			} else {
				problems = append(problems, errAt(file, line, col, "criteria %s: %v", code, err).Error())
			}
			continue
		}
		if _, dup := byCode[code]; dup {
			problems = append(problems, errAt(file, line, col, "population %s is given twice", code).Error())
			continue
		}
		byCode[code] = Population{Code: code, Expression: expr, Reads: reads(prog, nil), prog: prog}
		all = retrievals(prog, c.sets, all)
	}
	want := []string{InitialPopulation}
	if m.Scoring == ScoringProportion {
		want = append(want, Denominator, Numerator)
	}
	for _, code := range want {
		p, ok := byCode[code]
		if !ok {
			if !written[code] {
				bad("a %s measure needs the %s population", m.Scoring, code)
			}
			continue
		}
		m.Populations = append(m.Populations, p)
	}
	if len(byCode) > len(want) {
		bad("a %s measure has only %s", m.Scoring, strings.Join(want, ", "))
	}
	if len(problems) > 0 {
		return nil, problems
	}
	m.Filters = mergeFilters(all)
	for t := range m.Filters {
		m.Types = append(m.Types, t)
	}
	sort.Strings(m.Types)
	return m, nil
}

// locate finds the line and column (1-based) of an expression's JSON string
// in the file.
func locate(file []byte, expr string) (int, int) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(expr)
	i := bytes.Index(file, bytes.TrimSpace(buf.Bytes()))
	if i < 0 {
		return 1, 1
	}
	line := 1 + bytes.Count(file[:i], []byte("\n"))
	col := i - bytes.LastIndexByte(file[:i], '\n') + 1 // past the opening quote
	return line, col
}

// Measures lists the measures by id.
func (c *Catalogue) Measures() []*Measure {
	out := make([]*Measure, 0, len(c.order))
	for _, id := range c.order {
		out = append(out, c.measures[id])
	}
	return out
}

// Measure returns a measure by id.
func (c *Catalogue) Measure(id string) (*Measure, bool) {
	m, ok := c.measures[id]
	return m, ok
}

// ValueSet returns a shipped value set by canonical URL.
func (c *Catalogue) ValueSet(url string) (*ValueSet, bool) {
	vs, ok := c.sets[url]
	return vs, ok
}

// Evaluate says which populations the subject is in, in the order of
// m.Populations. Populations nest: a subject outside the initial population
// is in none, one outside the denominator is not in the numerator.
func (c *Catalogue) Evaluate(m *Measure, subj *Subject, period Period) []bool {
	return c.evaluate(m, subj, period, len(m.Populations))
}

// InInitialPopulation says whether the subject is in the measure's first
// population (Evaluate(...)[0], without evaluating the others).
func (c *Catalogue) InInitialPopulation(m *Measure, subj *Subject, period Period) bool {
	if len(m.Populations) == 0 {
		return false
	}
	return c.evaluate(m, subj, period, 1)[0]
}

// evaluate is Evaluate over the first n populations.
func (c *Catalogue) evaluate(m *Measure, subj *Subject, period Period, n int) []bool {
	e := &env{subj: subj, sets: c.sets, consts: map[string]value{
		"periodStart": {dateOf(period.Start)},
		"periodEnd":   {dateOf(period.End)},
		"subject":     {subj.Patient},
	}}
	out := make([]bool, len(m.Populations))
	for i, p := range m.Populations[:n] {
		if i > 0 && !out[i-1] {
			break
		}
		out[i] = truth(e.eval(p.prog, nil)) == 1
	}
	return out
}
