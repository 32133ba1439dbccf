// Package stats evaluates the measures of conformance/measures over one
// national source and releases the result under disclosure control. It
// sits beside federate (whose EvaluateMeasure decides, per source, what
// may be counted and merges the counts) and uses the same sources and
// mapping: a patient's records are fetched a batch of patients at a time
// (code filters pushed down where a source says it can search on them,
// scanned otherwise), mapped into the MHP, evaluated, counted into a table
// and forgotten. Only counts leave a source's evaluation. A source that
// implements Scanner (source.Bundle) hands over its patients as they come;
// the others (source.FHIR today) give the whole Patient search result
// first, so the patient list, though not their records, grows with the
// population.
//
// A Report renders as a MeasureReport or CSV; PublishedRelease reads a
// MeasureReport as sent back into the table an auditor checks. It knows
// nothing of HTTP.
package stats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/migrant-health/mhg/conformance/measures"
	"github.com/migrant-health/mhg/gateway/source"
	"github.com/migrant-health/mhg/mappings"
)

// Source is what the evaluator needs from a national source.
type Source interface {
	ID() string
	Country() string
	Profile() string
	Search(ctx context.Context, resourceType string, params url.Values) ([]source.Resource, error)
}

// Scanner is a source that can hand over search results as they come, page
// by page, without gathering them.
type Scanner interface {
	Scan(ctx context.Context, resourceType string, params url.Values, fn func(source.Resource) error) error
}

var _ Scanner = (*source.Bundle)(nil)

// Searcher says which search parameters a source understands for a type;
// the evaluator pushes filters down only to sources that say so.
type Searcher interface {
	SearchParams(ctx context.Context, resourceType string) []string
}

// Mapper maps national resources into the MHP.
type Mapper interface {
	Map(profile string, in []byte, opts mappings.Options) (mappings.Result, error)
}

// BatchSize is how many patients the evaluator asks about at once.
const BatchSize = 100

// Request is one evaluation.
type Request struct {
	// Measure is the compiled measure.
	Measure *measures.Measure
	// Period is the measurement period (already snapped to whole months).
	Period measures.Period
	// Strata are the catalogue codes to stratify by (0, 1 or 2).
	Strata []string
}

// Counts is what one source's evaluation produced: per combination of
// categories (joined by "\x00"), the count of each population.
type Counts map[string][]int

// ErrInvalid: the request cannot be evaluated as asked.
var ErrInvalid = errors.New("invalid statistics request")

// Evaluator evaluates measures over sources.
type Evaluator struct {
	cat    *measures.Catalogue
	mapper Mapper
}

// New returns an Evaluator.
func New(cat *measures.Catalogue, mapper Mapper) *Evaluator {
	return &Evaluator{cat: cat, mapper: mapper}
}

// stratifiers resolves the requested strata.
func stratifiers(codes []string) ([]measures.Stratifier, bool, error) {
	if len(codes) > 2 {
		return nil, false, fmt.Errorf("%w: at most two strata (one- and two-way tables)", ErrInvalid)
	}
	var out []measures.Stratifier
	sensitive := false
	for _, c := range codes {
		st, ok := measures.StratifierByCode(c)
		if !ok {
			return nil, false, fmt.Errorf("%w: %q is not in the strata catalogue", ErrInvalid, c)
		}
		if slices.ContainsFunc(out, func(s measures.Stratifier) bool { return s.Code == c }) {
			return nil, false, fmt.Errorf("%w: stratum %s named twice", ErrInvalid, c)
		}
		sensitive = sensitive || st.Class == measures.ClassSensitive
		out = append(out, st)
	}
	return out, sensitive, nil
}

// EvaluateSource counts one source's patients. Patients are read a batch
// at a time; their records are fetched with the measure's filters where
// the source can apply them, mapped, evaluated and dropped.
func (e *Evaluator) EvaluateSource(ctx context.Context, src Source, req Request) (Counts, error) {
	sts, sensitive, err := stratifiers(req.Strata)
	if err != nil {
		return nil, err
	}
	types := append([]string(nil), req.Measure.Types...)
	// The migration context (class S) is read only when a class S stratum
	// was asked for, and is then used for that stratum alone.
	if sensitive && !slices.Contains(types, "Observation") {
		types = append(types, "Observation")
	}
	counts := Counts{}
	var batch []source.Resource
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := e.evaluateBatch(ctx, src, req, sts, sensitive, types, batch, counts)
		batch = batch[:0]
		return err
	}
	err = scan(ctx, src, "Patient", url.Values{}, func(r source.Resource) error {
		batch = append(batch, r)
		if len(batch) == BatchSize {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return nil, err
	}
	return counts, nil
}

func scan(ctx context.Context, src Source, typ string, params url.Values, fn func(source.Resource) error) error {
	if s, ok := src.(Scanner); ok {
		return s.Scan(ctx, typ, params, fn)
	}
	rs, err := src.Search(ctx, typ, params)
	if err != nil {
		return err
	}
	for _, r := range rs {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// params builds a batch's search: the patients, and the measure's filters
// for the type where the source understands them.
func params(ctx context.Context, src Source, typ string, f measures.Filter, period measures.Period, ids []string) url.Values {
	q := url.Values{"patient": {strings.Join(ids, ",")}}
	s, ok := src.(Searcher)
	if !ok {
		return q
	}
	known := s.SearchParams(ctx, typ)
	if p := codeParam(typ, f.CodeElement); p != "" && slices.Contains(known, p) && len(f.Codes) > 0 {
		q.Set(p, strings.Join(f.Codes, ","))
	}
	if p := dateParam(typ, f.DateElement); p != "" && slices.Contains(known, p) {
		if f.From {
			q.Add(p, "ge"+period.Start.Format("2006-01-02"))
		}
		if f.To {
			q.Add(p, "le"+period.End.Format("2006-01-02"))
		}
	}
	return q
}

// codeParam and dateParam name the R4 search parameters of the elements
// criteria filter on.
func codeParam(typ, element string) string {
	switch {
	case element == "code" && (typ == "Condition" || typ == "Observation" || typ == "Procedure"):
		return "code"
	case element == "vaccineCode" && typ == "Immunization":
		return "vaccine-code"
	}
	return ""
}

func dateParam(typ, element string) string {
	switch {
	case typ == "Condition" && element == "onset":
		return "onset-date"
	case typ == "Immunization" && element == "occurrence", typ == "Observation" && element == "effective",
		typ == "Procedure" && element == "performed":
		return "date"
	}
	return ""
}

// refOf reads the patient a national resource is about.
type refOf struct {
	Subject *struct{ Reference string } `json:"subject"`
	Patient *struct{ Reference string } `json:"patient"`
}

func patientOf(b []byte) string {
	var r refOf
	_ = json.Unmarshal(b, &r)
	ref := ""
	switch {
	case r.Subject != nil:
		ref = r.Subject.Reference
	case r.Patient != nil:
		ref = r.Patient.Reference
	}
	if i := strings.LastIndex(ref, "Patient/"); i >= 0 {
		return ref[i+len("Patient/"):]
	}
	return ""
}

func (e *Evaluator) evaluateBatch(ctx context.Context, src Source, req Request, sts []measures.Stratifier, sensitive bool,
	types []string, batch []source.Resource, counts Counts) error {
	mopts := mappings.Options{SourceID: src.ID(), Country: src.Country()}
	subjects := make(map[string]*measures.Subject, len(batch))
	ids := make([]string, 0, len(batch))
	for _, p := range batch {
		res, err := e.mapper.Map(src.Profile(), p.JSON, mopts)
		if err != nil || len(res.Outputs) == 0 {
			continue // not mappable: not counted (as federate drops it)
		}
		subj := &measures.Subject{Resources: map[string][]map[string]any{}}
		for i, o := range res.Outputs {
			var m map[string]any
			if err := json.Unmarshal(o.JSON, &m); err != nil {
				continue
			}
			if i == 0 {
				subj.Patient = m
			} else if sensitive && o.Class == mappings.ClassSensitive {
				subj.Resources[o.Type] = append(subj.Resources[o.Type], m)
			}
		}
		if subj.Patient == nil {
			continue
		}
		subjects[p.ID] = subj
		ids = append(ids, p.ID)
	}
	if len(ids) == 0 {
		return nil
	}
	for _, typ := range types {
		q := params(ctx, src, typ, req.Measure.Filters[typ], req.Period, ids)
		err := scan(ctx, src, typ, q, func(r source.Resource) error {
			subj := subjects[patientOf(r.JSON)]
			if subj == nil {
				return nil
			}
			res, err := e.mapper.Map(src.Profile(), r.JSON, mopts)
			if err != nil {
				return nil
			}
			for _, o := range res.Outputs {
				if o.Class == mappings.ClassSensitive && !sensitive {
					continue
				}
				var m map[string]any
				if json.Unmarshal(o.JSON, &m) == nil {
					subj.Resources[o.Type] = append(subj.Resources[o.Type], m)
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("source %s: %s: %w", src.ID(), typ, err)
		}
	}
	for _, id := range ids {
		subj := subjects[id]
		in := e.cat.Evaluate(req.Measure, subj, req.Period)
		if !in[0] {
			continue
		}
		cats := make([]string, len(sts))
		for i, st := range sts {
			cats[i] = st.Category(subj, req.Period, src.Country())
		}
		key := strings.Join(cats, "\x00")
		c := counts[key]
		if c == nil {
			c = make([]int, len(in))
			counts[key] = c
		}
		for i, ok := range in {
			if ok {
				c[i]++
			}
		}
	}
	return nil
}

// Merge adds b's counts into a.
func (a Counts) Merge(b Counts) {
	for k, v := range b {
		c := a[k]
		if c == nil {
			c = make([]int, len(v))
			a[k] = c
		}
		for i := range v {
			c[i] += v[i]
		}
	}
}

// Categories lists, per dimension, the categories that occur, sorted.
func (a Counts) Categories(dims int) [][]string {
	sets := make([]map[string]bool, dims)
	for i := range sets {
		sets[i] = map[string]bool{}
	}
	for k := range a {
		if dims == 0 {
			break
		}
		for i, c := range strings.Split(k, "\x00") {
			sets[i][c] = true
		}
	}
	out := make([][]string, dims)
	for i, s := range sets {
		for c := range s {
			out[i] = append(out[i], c)
		}
		sort.Strings(out[i])
	}
	return out
}

// Stratifiers resolves the catalogue codes of a request: at most two,
// each in the catalogue once. Errors wrap ErrInvalid and are safe to show.
func Stratifiers(codes []string) ([]measures.Stratifier, error) {
	sts, _, err := stratifiers(codes)
	return sts, err
}
