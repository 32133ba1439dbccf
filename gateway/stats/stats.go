// Package stats evaluates the measures of conformance/measures over one
// national source and releases the result under disclosure control. It
// sits beside federate (whose EvaluateMeasure decides, per source, what
// may be counted and merges the counts) and uses the same sources and
// mapping. Evaluation streams: the source's Patients are scanned and cut
// into batches, a few batches are evaluated at once, and a batch's
// records are fetched (code and date filters pushed down where a source
// says it can search on them, the code filter tested on the raw resource
// otherwise), mapped into the MHP, evaluated, counted into a table and
// forgotten. Of a Patient, only the elements the criteria and the strata
// read are mapped (mappings.Engine.MapSelected), unless a class S stratum
// reads the migration context split out of it. Only counts leave a
// source's evaluation, and what it holds is the tables and the batches in
// flight, whatever the population. A source that implements Scanner
// (source.Bundle, source.FHIR) hands over its patients as they come; for
// any other the Patient search result is gathered first, so the patient
// list, though not their records, grows with the population.
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
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

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

var (
	_ Scanner  = (*source.Bundle)(nil)
	_ Scanner  = (*source.FHIR)(nil)
	_ Searcher = (*source.FHIR)(nil)
)

// Searcher says which search parameters a source understands for a type;
// the evaluator pushes filters down only to sources that say so.
type Searcher interface {
	SearchParams(ctx context.Context, resourceType string) []string
}

// Mapper maps national resources into the MHP.
type Mapper interface {
	Map(profile string, in []byte, opts mappings.Options) (mappings.Result, error)
}

// SelectiveMapper is a Mapper that can map only the elements of a
// resource a caller reads (mappings.Engine): the evaluator maps a
// Patient's gender and birthDate, not its names and identifiers, when
// the criteria and strata read no more.
type SelectiveMapper interface {
	MapSelected(profile string, in []byte, opts mappings.Options, sel *mappings.Selection) (map[string]any, error)
}

var _ SelectiveMapper = (*mappings.Engine)(nil)

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
	// Workers is how many batches of patients are evaluated at once; zero
	// means GOMAXPROCS.
	Workers int
	// pause, when set, is called every pauseEvery batches of a scan with
	// no batch in flight (tests measure what evaluation keeps there).
	pause      func()
	pauseEvery int
	// readAll turns the shortcuts off (no local filter, no early drop of
	// patients outside the initial population): tests compare.
	readAll bool
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

// EvaluateSource counts one source's patients. The Patients are scanned
// and cut into batches of BatchSize; Workers batches are evaluated at once.
// A batch's Patients are mapped first (only the elements the criteria and
// strata read, where that is exact), and when the initial population is
// decided from the Patient alone (Population.Reads), those outside it are
// dropped before anything else of theirs is read. The rest's records of
// the measure's types are then fetched with the measure's filters where
// the source can apply them (applied here to the raw resource otherwise,
// so that a resource no criterion can match is never mapped), mapped into
// the MHP, evaluated, counted into the batch worker's table and dropped.
// What is held at any time is the tables (one row per combination of
// categories) and the batches in flight, whatever the population.
func (e *Evaluator) EvaluateSource(ctx context.Context, src Source, req Request) (Counts, error) {
	p, err := e.plan(ctx, src, req)
	if err != nil {
		return nil, err
	}
	workers := e.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	g, ctx := errgroup.WithContext(ctx)
	batches := make(chan []source.Resource)
	tables := make([]Counts, workers)
	var inFlight sync.WaitGroup
	for w := range workers {
		tables[w] = Counts{}
		g.Go(func() error {
			for batch := range batches {
				err := p.evaluateBatch(ctx, batch, tables[w])
				inFlight.Done()
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(batches)
		batch := make([]source.Resource, 0, BatchSize)
		sent := 0
		send := func() error {
			if len(batch) == 0 {
				return nil
			}
			inFlight.Add(1)
			select {
			case batches <- batch:
			case <-ctx.Done():
				inFlight.Done()
				return ctx.Err()
			}
			batch = make([]source.Resource, 0, BatchSize)
			sent++
			if e.pause != nil && sent%e.pauseEvery == 0 {
				inFlight.Wait()
				e.pause()
			}
			return nil
		}
		err := scan(ctx, src, "Patient", url.Values{}, func(r source.Resource) error {
			batch = append(batch, r)
			if len(batch) == BatchSize {
				return send()
			}
			return nil
		})
		if err == nil {
			err = send()
		}
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	counts := tables[0]
	for _, t := range tables[1:] {
		counts.Merge(t)
	}
	return counts, nil
}

// scan hands over a search's results one at a time: as they come from a
// Scanner, from the gathered result otherwise.
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

// plan is one evaluation over one source, decided once.
type plan struct {
	e         *Evaluator
	src       Source
	req       Request
	sts       []measures.Stratifier
	sensitive bool
	// patientFirst: the initial population reads the Patient alone.
	patientFirst bool
	mopts        mappings.Options
	// patients maps a Patient's selected elements only (nil: everything).
	patients SelectiveMapper
	sel      *mappings.Selection
	fetches  []fetch
}

// fetch is how one type's records are read: the search parameters besides
// the patients, and the codes a resource must carry when the source could
// not be asked to filter on them (nil: no filter here).
type fetch struct {
	typ     string
	params  url.Values
	element string
	codes   map[string]bool
}

func (e *Evaluator) plan(ctx context.Context, src Source, req Request) (*plan, error) {
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
	p := &plan{e: e, src: src, req: req, sts: sts, sensitive: sensitive,
		patientFirst: !e.readAll && len(req.Measure.Populations) > 0 && len(req.Measure.Populations[0].Reads) == 0,
		mopts:        mappings.Options{SourceID: src.ID(), Country: src.Country(), Tree: true}}
	p.patients, p.sel = e.patientSelection(req.Measure, sts, sensitive)
	for _, typ := range types {
		f := req.Measure.Filters[typ]
		q, pushed := params(ctx, src, typ, f, req.Period)
		ft := fetch{typ: typ, params: q}
		if !pushed && !e.readAll && len(f.Codes) > 0 && (f.CodeElement == "code" || f.CodeElement == "vaccineCode") {
			ft.element = f.CodeElement
			ft.codes = make(map[string]bool, len(f.Codes))
			for _, c := range f.Codes {
				ft.codes[c] = true
			}
		}
		p.fetches = append(p.fetches, ft)
	}
	return p, nil
}

// patientSelection says which elements of the MHP Patient the criteria
// and strata read, and the mapper that maps only those; nil when the
// Patient is mapped whole: the mapper cannot select, a criterion reads the
// Patient as a whole, or a class S stratum reads the migration context
// split out of it.
func (e *Evaluator) patientSelection(m *measures.Measure, sts []measures.Stratifier, sensitive bool) (SelectiveMapper, *mappings.Selection) {
	sm, ok := e.mapper.(SelectiveMapper)
	if !ok || e.readAll || sensitive {
		return nil, nil
	}
	elements, ok := m.PatientElements()
	if !ok {
		return nil, nil
	}
	for _, st := range sts {
		elements = append(elements, st.PatientElements...)
	}
	return sm, mappings.Select(elements...)
}

// params builds a type's search besides the patients: the measure's
// filters where the source understands them. pushed says whether the code
// filter went to the source.
func params(ctx context.Context, src Source, typ string, f measures.Filter, period measures.Period) (url.Values, bool) {
	q := url.Values{}
	s, ok := src.(Searcher)
	if !ok {
		return q, false
	}
	known := s.SearchParams(ctx, typ)
	pushed := false
	if p := codeParam(typ, f.CodeElement); p != "" && slices.Contains(known, p) && len(f.Codes) > 0 {
		q.Set(p, strings.Join(f.Codes, ","))
		pushed = true
	}
	if p := dateParam(typ, f.DateElement); p != "" && slices.Contains(known, p) {
		if f.From {
			q.Add(p, "ge"+period.Start.Format("2006-01-02"))
		}
		if f.To {
			q.Add(p, "le"+period.End.Format("2006-01-02"))
		}
	}
	return q, pushed
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

// concept is a CodeableConcept as far as filters read it.
type concept struct {
	Coding []struct{ System, Code string } `json:"coding"`
}

// head is what the evaluator reads of a national resource before mapping
// it: the patient it is about and the coded elements filters test.
type head struct {
	Subject     *struct{ Reference string } `json:"subject"`
	Patient     *struct{ Reference string } `json:"patient"`
	Code        *concept                    `json:"code"`
	VaccineCode *concept                    `json:"vaccineCode"`
}

// headMembers are the members of a national resource head reads.
var headMembers = []string{"subject", "patient", "code", "vaccineCode"}

// headOf reads a national resource's head; what is missing or not of the
// expected shape is left empty (the resource then matches no patient or
// no code, as encoding/json would leave it).
func headOf(raw []byte) head {
	var h head
	m, err := mappings.ReadMembers(raw, headMembers...)
	if err != nil {
		return h
	}
	ref := func(v any) *struct{ Reference string } {
		o, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		s, _ := o["reference"].(string)
		return &struct{ Reference string }{s}
	}
	cc := func(v any) *concept {
		o, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		c := &concept{}
		codings, _ := o["coding"].([]any)
		for _, x := range codings {
			cd, ok := x.(map[string]any)
			if !ok {
				continue
			}
			sys, _ := cd["system"].(string)
			code, _ := cd["code"].(string)
			c.Coding = append(c.Coding, struct{ System, Code string }{sys, code})
		}
		return c
	}
	h.Subject, h.Patient = ref(m["subject"]), ref(m["patient"])
	h.Code, h.VaccineCode = cc(m["code"]), cc(m["vaccineCode"])
	return h
}

// patient returns the id of the Patient the resource's subject or patient
// references, written relative, absolute or with a version; "" for none.
func (h *head) patient() string {
	ref := ""
	switch {
	case h.Subject != nil:
		ref = h.Subject.Reference
	case h.Patient != nil:
		ref = h.Patient.Reference
	}
	if i := strings.LastIndex(ref, "Patient/"); i >= 0 {
		id, _, _ := strings.Cut(ref[i+len("Patient/"):], "/_history/")
		return id
	}
	return ""
}

// passes says whether a resource may meet the criteria that read its
// type: with no code filter, always; with one, when a coding of the
// element is among the codes (what a source asked to filter would return).
func (f *fetch) passes(h *head) bool {
	if f.codes == nil {
		return true
	}
	c := h.Code
	if f.element == "vaccineCode" {
		c = h.VaccineCode
	}
	if c == nil {
		return false
	}
	for _, cd := range c.Coding {
		if f.codes[cd.System+"|"+cd.Code] {
			return true
		}
	}
	return false
}

// tree reads a mapped output as the criteria see it.
func tree(o mappings.Output) map[string]any {
	if o.Tree != nil {
		return o.Tree
	}
	var m map[string]any
	if json.Unmarshal(o.JSON, &m) != nil {
		return nil
	}
	return m
}

// patient maps a national Patient into a subject: the MHP Patient (only
// its selected elements when there is a selection) and, when a class S
// stratum was asked for, the migration context split out of it. Nil when
// the Patient cannot be mapped.
func (p *plan) patient(in []byte) *measures.Subject {
	subj := &measures.Subject{Resources: map[string][]map[string]any{}}
	if p.sel != nil {
		t, err := p.patients.MapSelected(p.src.Profile(), in, p.mopts, p.sel)
		if err != nil {
			return nil
		}
		subj.Patient = t
		return subj
	}
	res, err := p.e.mapper.Map(p.src.Profile(), in, p.mopts)
	if err != nil || len(res.Outputs) == 0 {
		return nil
	}
	for i, o := range res.Outputs {
		t := tree(o)
		if t == nil {
			continue
		}
		if i == 0 {
			subj.Patient = t
		} else if p.sensitive && o.Class == mappings.ClassSensitive {
			subj.Resources[o.Type] = append(subj.Resources[o.Type], t)
		}
	}
	if subj.Patient == nil {
		return nil
	}
	return subj
}

func (p *plan) evaluateBatch(ctx context.Context, batch []source.Resource, counts Counts) error {
	m := p.req.Measure
	subjects := make(map[string]*measures.Subject, len(batch))
	ids := make([]string, 0, len(batch))
	for _, r := range batch {
		subj := p.patient(r.JSON)
		if subj == nil {
			continue // not mappable: not counted (as federate drops it)
		}
		if p.patientFirst && !p.e.cat.InInitialPopulation(m, subj, p.req.Period) {
			continue // outside the initial population: in none
		}
		subjects[r.ID] = subj
		ids = append(ids, r.ID)
	}
	if len(ids) == 0 {
		return nil
	}
	// Typed references (Patient/<id>) are the form every server reads; a
	// bare id is allowed for a single-target reference but not read by
	// all of them inside an OR list.
	refs := make([]string, len(ids))
	for i, id := range ids {
		refs[i] = "Patient/" + id
	}
	lists := patientLists(refs, maxPatientParam)
	for i := range p.fetches {
		for _, patients := range lists {
			if err := p.fetchFor(ctx, &p.fetches[i], patients, subjects); err != nil {
				return err
			}
		}
	}
	cats := make([]string, len(p.sts))
	for _, id := range ids {
		subj := subjects[id]
		in := p.e.cat.Evaluate(m, subj, p.req.Period)
		if !in[0] {
			continue
		}
		for i, st := range p.sts {
			cats[i] = st.Category(subj, p.req.Period, p.src.Country())
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

// maxPatientParam bounds the patient parameter of one search. Servers,
// and the proxies in front of them, refuse request lines over 8 KB by
// default (nginx, Apache, Jetty, Tomcat); a batch of patients with long
// ids is asked about in as many searches as that takes.
const maxPatientParam = 4000

// patientLists joins references into comma-separated lists of at most
// limit bytes (a single longer reference is a list of its own).
func patientLists(refs []string, limit int) []string {
	var lists []string
	var cur strings.Builder
	for _, r := range refs {
		if cur.Len() > 0 && cur.Len()+1+len(r) > limit {
			lists = append(lists, cur.String())
			cur.Reset()
		}
		if cur.Len() > 0 {
			cur.WriteByte(',')
		}
		cur.WriteString(r)
	}
	if cur.Len() > 0 {
		lists = append(lists, cur.String())
	}
	return lists
}

// fetchFor searches one type for a list of patients and adds what may
// meet the criteria, mapped, to their subjects.
func (p *plan) fetchFor(ctx context.Context, f *fetch, patients string, subjects map[string]*measures.Subject) error {
	q := url.Values{"patient": {patients}}
	for k, v := range f.params {
		q[k] = v
	}
	err := scan(ctx, p.src, f.typ, q, func(r source.Resource) error {
		h := headOf(r.JSON)
		subj := subjects[h.patient()]
		if subj == nil || !f.passes(&h) {
			return nil
		}
		res, err := p.e.mapper.Map(p.src.Profile(), r.JSON, p.mopts)
		if err != nil {
			return nil
		}
		for _, o := range res.Outputs {
			if o.Class == mappings.ClassSensitive && !p.sensitive {
				continue
			}
			if t := tree(o); t != nil {
				subj.Resources[o.Type] = append(subj.Resources[o.Type], t)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("source %s: %s: %w", p.src.ID(), f.typ, err)
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
