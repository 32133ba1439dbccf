package federate

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	"go.opentelemetry.io/otel/attribute"

	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/gateway/cache"
	"github.com/migrant-health/mhg/gateway/source"
	"github.com/migrant-health/mhg/gateway/summary"
	"github.com/migrant-health/mhg/gateway/telemetry"
	"github.com/migrant-health/mhg/mappings"
)

// Warning codes added by identity resolution.
const (
	// WarnAmbiguous: the source holds more than one person for the
	// identifiers used, so none of its records were linked.
	WarnAmbiguous = summary.WarnAmbiguous
)

// LinkerOptions configure a Linker. The zero value resolves identities
// with the registry derived from the Service's mapper.
type LinkerOptions struct {
	// Identity says which identifiers may find a person in which sources.
	// Nil: the mapper's registry (mappings.Engine.IdentifierRegistry), or
	// passports alone for a mapper without one.
	Identity *mappings.IdentifierRegistry
	// Now stamps documents and Provenances. Nil: time.Now.
	Now func() time.Time
	// Author names the gateway as the document's author. Empty:
	// "Migrant Health Gateway", in the narrative language.
	Author string
	// DocumentBytes bounds the rendered $summary documents kept, so that
	// a summary whose every input is as before is not rendered again (see
	// documents). Zero means DefaultDocumentBytes; negative renders every
	// summary afresh.
	DocumentBytes int64
}

// Linker finds the same person in several sources by exact match on
// identifiers that cross borders, and answers the patient-level operations
// over the linked records: $summary (one merged IPS document, rendered by
// the summary package) and $everything (every record, paged by the
// caller). It works through its Service: the same query and release
// decisions, cache, mapping and deadlines.
type Linker struct {
	svc    *Service
	ids    *mappings.IdentifierRegistry
	render *summary.Renderer
	docs   *documents // nil: every summary rendered afresh
}

// NewLinker returns a Linker over svc.
func NewLinker(svc *Service, opts LinkerOptions) (*Linker, error) {
	if svc == nil {
		return nil, errors.New("federate: NewLinker needs a Service")
	}
	l := &Linker{svc: svc, ids: opts.Identity, docs: newDocuments(opts.DocumentBytes)}
	if l.ids == nil {
		reg, err := defaultIdentity(svc.mapper())
		if err != nil {
			return nil, fmt.Errorf("federate: default identifier registry: %w", err)
		}
		l.ids = reg
	}
	l.render = summary.New(summary.Options{Identifiers: l.ids, Now: opts.Now, Author: opts.Author})
	return l, nil
}

// Identity returns the registry the Linker resolves with.
func (l *Linker) Identity() *mappings.IdentifierRegistry { return l.ids }

// PatientQuery names the patient of a patient-level operation: exactly one
// of ID (instance level) and Identifier (type level).
type PatientQuery struct {
	// ID is a gateway Patient id.
	ID string
	// Identifier is "system|value", FHIR token syntax (system required).
	Identifier string
}

// link is one source's record of the person.
type link struct {
	src      Source
	upstream string
	// patient is the released Patient.
	patient Entry
	// derived are outputs the mapping split off the Patient (the
	// migration context), not yet decided on.
	derived []mapped
	// entries are the released clinical records.
	entries []Entry
	// how says how the record was linked to the person.
	how linkHow
	// ids are the Patient's identifiers as the source gave them, before
	// release redaction (identifiersOf).
	ids []patientID
}

// linkHow says how one record was linked (summary.LinkedBy).
type linkHow = summary.LinkedBy

// linkage is every source's record of one person, in source order.
type linkage struct {
	anchor *link
	links  []*link
}

// warn records a warning once per source.
func (r *Result) warn(src, code string) {
	for _, w := range r.Warnings {
		if w.Source == src {
			return
		}
	}
	r.Warnings = append(r.Warnings, Warning{Source: src, Code: code})
}

func (r *Result) contacted(src string) {
	if !slices.Contains(r.Contacted, src) {
		r.Contacted = append(r.Contacted, src)
	}
}

// gather resolves the person and fetches their records of the given types
// from every linked source. It returns with res filled (decisions,
// contacts, warnings) whether it fails or not.
func (l *Linker) gather(ctx context.Context, req Request, res *Result, q PatientQuery, types []string) (*linkage, error) {
	ctx, span := tracer().Start(ctx, telemetry.SpanFederateResolve)
	defer span.End()
	ctx, cancel := context.WithTimeout(ctx, l.svc.deadline())
	defer cancel()
	if (q.ID == "") == (q.Identifier == "") {
		return nil, fmt.Errorf("%w: give a patient id or an identifier, not both", ErrInvalid)
	}

	// The query phase decides, once per source, which may be asked at all.
	allowed := map[string]bool{}
	reasons := map[string][]string{}
	var all []string
	for _, src := range l.svc.Sources() {
		d, _ := l.svc.permitted(ctx, req, src, res)
		if d.Allow {
			allowed[src.ID()] = true
		} else {
			reasons[src.ID()] = d.Reasons
			all = append(all, d.Reasons...)
		}
	}

	r := &resolution{l: l, req: req, res: res, allowed: allowed, linked: map[string]*link{}, done: map[string]bool{}, used: map[string]bool{}}
	var pending []linkID
	if q.ID != "" {
		src, upstream, err := l.svc.locate("Patient", q.ID)
		if err != nil {
			return nil, err
		}
		res.Patient = "Patient/" + q.ID
		if !allowed[src.ID()] {
			return nil, &DeniedError{Reasons: dedupe(reasons[src.ID()])}
		}
		anchor, err := l.anchor(ctx, req, res, src, upstream, q.ID)
		if err != nil {
			return nil, err
		}
		anchor.how.By = summary.LinkRequested
		r.anchor = anchor
		r.accept(anchor)
		pending = r.identifiersOf(anchor)
	} else {
		if len(allowed) == 0 {
			return nil, &DeniedError{Reasons: dedupe(all)}
		}
		system, value, ok := r4.SplitToken(q.Identifier)
		if !ok || system == "" || value == "" || r4.CheckToken(q.Identifier) != nil {
			return nil, fmt.Errorf("%w: identifier must be system|value", ErrInvalid)
		}
		id, ok := l.ids.Match(system, value, nil, req.Requester.Country)
		if !ok {
			return nil, fmt.Errorf("%w: identifiers of this system are not used to find patients", ErrInvalid)
		}
		pending = []linkID{id}
	}

	// Each round asks the sources that may be asked with the identifiers
	// found so far; persons found bring their own identifiers to the next
	// round. Every source is linked at most once.
	for round := 0; len(pending) > 0 && round <= len(l.svc.Sources()); round++ {
		pending = r.round(ctx, pending)
	}
	// Sources no identifier reached may still hold the person: a
	// demographic match links a record only when it is certain.
	if len(r.linked) > 0 {
		r.linkByMatch(ctx)
	}
	span.SetAttributes(attribute.Int(string(telemetry.AttrCount), len(r.linked)))

	if len(r.linked) == 0 {
		if r.asked > 0 && r.failed == r.asked {
			return nil, r.fails.err()
		}
		if r.ambiguous > 0 {
			// The person exists, but which record is theirs cannot be
			// told: never a 404.
			return nil, ErrAmbiguous
		}
		return nil, ErrNotFound
	}
	lk := &linkage{}
	for _, src := range l.svc.Sources() {
		if ln, ok := r.linked[src.ID()]; ok {
			lk.links = append(lk.links, ln)
		}
	}
	lk.anchor = r.anchor
	if lk.anchor == nil {
		// Type level: the requester's own country's record first, else the
		// first source's.
		lk.anchor = lk.links[0]
		for _, ln := range lk.links {
			if ln.src.Country() == req.Requester.Country {
				lk.anchor = ln
				break
			}
		}
		res.Patient = "Patient/" + lk.anchor.patient.ID
	}

	if err := l.fetchRecords(ctx, req, res, lk, types); err != nil {
		return nil, err
	}
	return lk, nil
}

// anchor reads the patient the client named and releases it.
func (l *Linker) anchor(ctx context.Context, req Request, res *Result, src Source, upstream, id string) (*link, error) {
	ctx, cancel := context.WithTimeout(ctx, l.svc.sourceTimeout())
	defer cancel()
	res.contacted(src.ID())
	set, err := l.svc.readMapped(ctx, req, src, "Patient", upstream)
	if err != nil {
		if errors.Is(err, source.ErrNotFound) {
			return nil, ErrNotFound
		}
		return nil, sourceError(err)
	}
	persons := personsOf(set.items)
	p, ok := persons[id]
	if !ok {
		return nil, ErrNotFound
	}
	// A record the source replaced by another (a merge) stands for the
	// record it kept: that one is read and released instead.
	p, hops := l.svc.survivor(ctx, req, src, p)
	ln, err := l.release(ctx, req, res, src, p)
	if err != nil {
		return nil, sourceError(err)
	}
	if ln != nil {
		ln.how.Merged = hops > 0
	}
	if ln == nil {
		reasons := []string{}
		if n := len(res.Decisions); n > 0 {
			reasons = res.Decisions[n-1].Decision.Reasons
		}
		return nil, &DeniedError{Reasons: reasons}
	}
	return ln, nil
}

// person is one Patient of a source answer and what was split off it.
type person struct {
	patient mapped
	derived []mapped
}

// personsOf groups a mapped set by Patient id.
func personsOf(items []mapped) map[string]*person {
	out := map[string]*person{}
	for _, m := range items {
		if r4.TypeName(m.res) == "Patient" {
			out[r4.ID(m.res)] = &person{patient: m}
		}
	}
	for _, m := range items {
		if r4.TypeName(m.res) == "Patient" {
			continue
		}
		if p, ok := out[patientRef(m.res)]; ok {
			p.derived = append(p.derived, m)
		}
	}
	return out
}

// release asks the release phase about a source's Patient: nil when the
// policy refuses it, and then nothing of that source is used, not even to
// find the person elsewhere.
func (l *Linker) release(ctx context.Context, req Request, res *Result, src Source, p *person) (*link, error) {
	// Release redaction works on the Patient in place: what may find the
	// person elsewhere is taken first.
	ids := patientIdentifiers(p.patient.res)
	out, err := l.svc.release(ctx, req, src, []mapped{p.patient}, res)
	if err != nil || len(out) == 0 {
		return nil, err
	}
	_, upstream, err := l.svc.decodeID("Patient", out[0].ID)
	if err != nil {
		return nil, fmt.Errorf("%w: patient id of another source", source.ErrInvalidResponse)
	}
	return &link{src: src, upstream: upstream, patient: out[0], derived: p.derived, ids: ids}, nil
}

// resolution is the state of one identity resolution.
type resolution struct {
	l       *Linker
	req     Request
	res     *Result
	allowed map[string]bool
	anchor  *link
	// linked holds each source's record of the person.
	linked map[string]*link
	// done marks sources not to ask again (failed or ambiguous).
	done map[string]bool
	// used marks identifiers already asked with.
	used map[string]bool
	// asked, failed and timeouts count source answers, to tell "nobody
	// answered" from "nobody knows the person".
	asked, failed int
	fails         failures
	// ambiguous counts the sources that hold more than one person for
	// the identifiers asked with.
	ambiguous int
}

func (r *resolution) accept(ln *link) { r.linked[ln.src.ID()] = ln }

// identifiersOf lists the identifiers of a linked Patient that may find
// the person elsewhere and have not been asked with yet: those the source
// gave (before release redaction, which decides what the requester sees,
// not what the gateway may link with) that the identifier registry lets
// the gateway use in some source.
func (r *resolution) identifiersOf(ln *link) []linkID {
	var out []linkID
	for _, id := range ln.ids {
		lid, ok := r.l.ids.Match(id.system, id.value, id.types, ln.src.Country())
		if ok && !r.used[lid.Key] {
			out = append(out, lid)
		}
	}
	return out
}

// answer is what one source said in a round.
type answer struct {
	src     Source
	ids     []linkID
	persons map[string]*person
	found   *link
	// denied is set when the release phase refused the one person found.
	denied bool
	err    error
	// searchErr is the error of the search itself, nil when the source
	// answered (whatever the release phase then said).
	searchErr error
	// part is what asking recorded: the contact and the decisions.
	part Result
	// merged is set when the person found is the record the source kept
	// of several it had merged (Patient.link).
	merged bool
}

// round asks every source that may be asked with some of ids: sources not
// yet linked, to find the person, and sources already linked, to check
// that the identifiers name nobody else there. It returns the identifiers
// the persons found bring.
func (r *resolution) round(ctx context.Context, ids []linkID) []linkID {
	for _, id := range ids {
		r.used[id.Key] = true
	}
	type job struct {
		src Source
		ids []linkID
	}
	var jobs []job
	seeking := false
	for _, src := range r.l.svc.Sources() {
		if !r.allowed[src.ID()] || r.done[src.ID()] {
			continue
		}
		var usable []linkID
		for _, id := range ids {
			if id.UsableIn(src.Country()) {
				usable = append(usable, id)
			}
		}
		if len(usable) == 0 {
			continue
		}
		if _, linked := r.linked[src.ID()]; !linked {
			seeking = true
		}
		jobs = append(jobs, job{src, usable})
	}
	// Checking the sources already linked only matters when the
	// identifiers would link another one.
	if !seeking {
		return nil
	}
	answers := inParallel(jobs, func(j job) (a answer) {
		r.ask(ctx, j.src, j.ids, &a)
		return a
	})
	for i := range answers {
		r.res.absorb(&answers[i].part)
		r.count(answers[i].searchErr)
	}

	// An identifier that names another person in a source already linked
	// is not a safe key: nothing found with this round's identifiers is
	// linked.
	safe := true
	for _, a := range answers {
		ln, linked := r.linked[a.src.ID()]
		if !linked || a.err != nil {
			continue
		}
		for id := range a.persons {
			if id != ln.patient.ID {
				safe = false
				r.res.warn(a.src.ID(), WarnAmbiguous)
				r.l.svc.logger().WarnContext(ctx, "identifier names more than one person", string(telemetry.AttrSourceID), a.src.ID())
			}
		}
	}
	var next []linkID
	for _, a := range answers {
		if _, linked := r.linked[a.src.ID()]; linked {
			continue
		}
		switch {
		case a.err != nil:
			r.done[a.src.ID()] = true
			r.res.warn(a.src.ID(), errorClass(a.err))
		case len(a.persons) > 1:
			r.done[a.src.ID()] = true
			r.ambiguous++
			r.res.warn(a.src.ID(), WarnAmbiguous)
			r.l.svc.logger().WarnContext(ctx, "identifier names more than one person", string(telemetry.AttrSourceID), a.src.ID(), string(telemetry.AttrCount), len(a.persons))
		case a.denied:
			// Nothing of a source whose record the policy withholds is
			// used, and nothing says it was there.
			r.done[a.src.ID()] = true
		case a.found != nil && safe:
			a.found.how = linkHow{By: summary.LinkIdentifier, Merged: a.merged}
			for _, id := range a.ids {
				if !slices.Contains(a.found.how.Kinds, id.Kind) {
					a.found.how.Kinds = append(a.found.how.Kinds, id.Kind)
				}
			}
			r.accept(a.found)
			next = append(next, r.identifiersOf(a.found)...)
		}
	}
	return next
}

// ask asks one source for the persons holding any of ids and, when it
// holds exactly one not yet linked, releases that Patient. It writes only
// to a.
func (r *resolution) ask(ctx context.Context, src Source, ids []linkID, a *answer) {
	ctx, cancel := context.WithTimeout(ctx, r.l.svc.sourceTimeout())
	defer cancel()
	a.src = src
	a.part.contacted(src.ID())
	value := sortedForms(ids)
	params := url.Values{"identifier": {value}}
	set, err := r.l.svc.fetchMapped(ctx, r.req, src, cache.KindResolve, []string{"Patient", "identifier=" + value}, nil,
		func(ctx context.Context) ([]source.Resource, error) { return src.Search(ctx, "Patient", params) })
	if errors.Is(err, source.ErrNotFound) {
		err = nil
	}
	a.searchErr, a.err = err, err
	if err != nil {
		return
	}
	a.ids = ids
	a.persons, a.merged = collapseMerged(personsOf(set.items))
	if _, linked := r.linked[src.ID()]; linked || len(a.persons) != 1 {
		return
	}
	for _, p := range a.persons {
		p, hops := r.l.svc.survivor(ctx, r.req, src, p)
		a.merged = a.merged || hops > 0
		ln, err := r.l.release(ctx, r.req, &a.part, src, p)
		if err != nil {
			a.persons, a.err = nil, err
			return
		}
		a.found, a.denied = ln, ln == nil
	}
}

// count notes one source's answer to a search, to tell "nobody answered"
// from "nobody knows the person".
func (r *resolution) count(err error) {
	r.asked++
	if err != nil {
		r.failed++
		r.fails.add(err)
	}
}

// fetchRecords reads the linked person's records of each type from every
// linked source in parallel, each source under its own timeout, and
// releases them. A source that fails is left out with a warning, its
// Patient too; when every source fails the request fails.
func (l *Linker) fetchRecords(ctx context.Context, req Request, res *Result, lk *linkage, types []string) error {
	if len(types) == 0 {
		return nil
	}
	type outcome struct {
		part Result
		err  error
	}
	outs := inParallel(lk.links, func(ln *link) (o outcome) {
		o.err = l.fetchLink(ctx, req, &o.part, ln, types)
		return o
	})
	kept := lk.links[:0]
	var fails failures
	for i, ln := range lk.links {
		res.absorb(&outs[i].part)
		if err := outs[i].err; err != nil {
			res.warn(ln.src.ID(), l.svc.sourceFailed(ctx, &fails, ln.src.ID(), err))
			continue
		}
		kept = append(kept, ln)
	}
	if len(kept) == 0 {
		return fails.err()
	}
	lk.links = kept
	return nil
}

// fetchLink reads and releases one linked source's records, every type in
// parallel, recording into part.
func (l *Linker) fetchLink(ctx context.Context, req Request, part *Result, ln *link, types []string) error {
	ctx, cancel := context.WithTimeout(ctx, l.svc.sourceTimeout())
	defer cancel()
	part.contacted(ln.src.ID())
	type outcome struct {
		set mappedSet
		err error
	}
	outs := inParallel(types, func(typ string) (o outcome) {
		o.set, o.err = l.patientRecords(ctx, req, ln, typ)
		return o
	})
	var errs []error
	for _, o := range outs {
		errs = append(errs, o.err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	var items []mapped
	for _, o := range outs {
		part.noteTruncated(ln.src, o.set)
		items = append(items, o.set.items...)
	}
	if slices.Contains(types, "Observation") {
		items = append(items, ln.derived...)
	}
	// The patient's consent was read when the Patient was released, a
	// moment ago in this request (afresh, if the client asked so): the
	// records are decided on that reading, from the cache, instead of
	// asking the source again.
	relReq := req
	relReq.NoCache = false
	entries, err := l.svc.release(ctx, relReq, ln.src, items, part)
	if err != nil {
		return err
	}
	ln.entries = entries
	return nil
}

// patientRecords searches one type of a patient's records, through the
// same cache entries as Service.SearchByPatient, and keeps those of that
// type.
func (l *Linker) patientRecords(ctx context.Context, req Request, ln *link, typ string) (mappedSet, error) {
	params := url.Values{"patient": {ln.upstream}}
	set, err := l.svc.fetchMapped(ctx, req, ln.src, cache.KindSearch, canonicalParams(typ, params),
		[]string{patientTag(ln.src, ln.upstream)},
		func(ctx context.Context) ([]source.Resource, error) { return ln.src.Search(ctx, typ, params) })
	if err != nil {
		if errors.Is(err, source.ErrNotFound) {
			return mappedSet{}, nil
		}
		return mappedSet{}, err
	}
	keep := set.items[:0:0]
	for _, m := range set.items {
		if r4.TypeName(m.res) == typ {
			keep = append(keep, m)
		}
	}
	set.items = keep
	return set, nil
}

// patientID is one identifier of a Patient.
type patientID struct {
	system, value string
	types         []string
}

func patientIdentifiers(cr *rpb.ContainedResource) []patientID {
	p := cr.GetPatient()
	if p == nil {
		return nil
	}
	var out []patientID
	for _, id := range p.GetIdentifier() {
		pid := patientID{system: id.GetSystem().GetValue(), value: id.GetValue().GetValue()}
		for _, c := range id.GetType().GetCoding() {
			pid.types = append(pid.types, c.GetSystem().GetValue()+"|"+c.GetCode().GetValue())
		}
		out = append(out, pid)
	}
	return out
}
