package federate

import (
	"context"
	"errors"
	"fmt"
	"github.com/migrant-health/mhg/gateway/telemetry"
	"net/url"
	"strings"

	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/gateway/authz"
	"github.com/migrant-health/mhg/gateway/cache"
	"github.com/migrant-health/mhg/gateway/source"
	"github.com/migrant-health/mhg/mappings"
)

// SearchPatients finds patients by identifier, a token search value as
// the client sent it, still escaped ("system|value", "|value" or "value"),
// in every source the policy lets the requester ask.
func (s *Service) SearchPatients(ctx context.Context, req Request, identifier string) (*Result, error) {
	res := &Result{}
	if identifier == "" {
		return res, fmt.Errorf("%w: identifier is required", ErrInvalid)
	}
	// What a source cannot read is the client's mistake, not the source's
	// failure: refused before any source is asked.
	if err := r4.CheckToken(identifier); err != nil {
		return res, fmt.Errorf("%w: identifier: the value %v", ErrInvalid, err)
	}
	params := url.Values{"identifier": {identifier}}
	err := s.fanOut(ctx, req, res, s.sources, func(ctx context.Context, src Source, part *Result) ([]Entry, error) {
		set, err := s.fetchMapped(ctx, req, src, cache.KindSearch, canonicalParams("Patient", params), nil,
			func(ctx context.Context) ([]source.Resource, error) { return src.Search(ctx, "Patient", params) })
		if err != nil {
			if errors.Is(err, source.ErrNotFound) {
				return nil, nil
			}
			return nil, err
		}
		part.noteTruncated(src, set)
		// A Patient search matches Patients: resources a mapping split off
		// them (the migration context) are reached by their own searches.
		var patients []mapped
		for _, m := range set.items {
			if r4.TypeName(m.res) == "Patient" {
				patients = append(patients, m)
			}
		}
		return s.release(ctx, req, src, patients, part)
	})
	return res, err
}

// derivedFrom names the upstream type each kind of derived output is split
// from (mappings.DerivedID).
var derivedFrom = map[string]string{"migration-context": "Patient"}

// Read returns one resource by gateway id.
func (s *Service) Read(ctx context.Context, req Request, resourceType, id string) (*Result, error) {
	res := &Result{}
	src, upstream, err := s.locate(resourceType, id)
	if err != nil {
		return res, err
	}
	if resourceType == "Patient" {
		res.Patient = "Patient/" + id
	}
	d, _ := s.permitted(ctx, req, src, res)
	if !d.Allow {
		return res, &DeniedError{Reasons: d.Reasons}
	}
	res.Contacted = append(res.Contacted, src.ID())
	ctx, cancel := context.WithTimeout(ctx, s.opts.SourceTimeout)
	defer cancel()
	// A resource the mapping split off another (a Patient's migration
	// context) is read by reading what it was split from.
	readType, readID := resourceType, upstream
	if base, kind, ok := mappings.SplitDerivedID(upstream); ok {
		if t, known := derivedFrom[kind]; known {
			readType, readID = t, base
		}
	}
	set, err := s.readMapped(ctx, req, src, readType, readID)
	if err != nil {
		if errors.Is(err, source.ErrNotFound) {
			return res, ErrNotFound
		}
		return res, sourceError(err)
	}
	// A read returns the resource asked for; resources a mapping split off
	// it are reached by their own reads and searches.
	var main []mapped
	for _, m := range set.items {
		if r4.ID(m.res) == id && r4.TypeName(m.res) == resourceType {
			main = append(main, m)
		}
	}
	if len(main) == 0 {
		return res, ErrNotFound
	}
	entries, err := s.release(ctx, req, src, main, res)
	if err != nil {
		return res, sourceError(err)
	}
	if len(entries) == 0 {
		reasons := []string{}
		if n := len(res.Decisions); n > 0 {
			reasons = res.Decisions[n-1].Decision.Reasons
		}
		return res, &DeniedError{Reasons: reasons}
	}
	if res.Patient == "" {
		if p := patientRef(entries[0].Resource); p != "" {
			res.Patient = "Patient/" + p
		}
	}
	res.Entries = entries
	return res, nil
}

// readMapped reads one upstream resource through the cache and maps it.
func (s *Service) readMapped(ctx context.Context, req Request, src Source, typ, upstream string) (mappedSet, error) {
	return s.fetchMapped(ctx, req, src, cache.KindResource, []string{typ, upstream}, nil,
		func(ctx context.Context) ([]source.Resource, error) {
			r, err := src.Read(ctx, typ, upstream)
			if err != nil {
				return nil, err
			}
			return []source.Resource{r}, nil
		})
}

// SearchByPatient returns a patient's resources of one type from the
// source that holds the patient.
func (s *Service) SearchByPatient(ctx context.Context, req Request, resourceType, patientID string) (*Result, error) {
	res := &Result{Patient: "Patient/" + patientID}
	src, upstream, err := s.locate("Patient", patientID)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			// An unknown patient has no resources: an empty searchset.
			return res, nil
		}
		return res, err
	}
	params := url.Values{"patient": {upstream}}
	err = s.fanOut(ctx, req, res, []Source{src}, func(ctx context.Context, src Source, part *Result) ([]Entry, error) {
		set, err := s.fetchMapped(ctx, req, src, cache.KindSearch, canonicalParams(resourceType, params),
			[]string{patientTag(src, upstream)},
			func(ctx context.Context) ([]source.Resource, error) { return src.Search(ctx, resourceType, params) })
		if err != nil {
			if errors.Is(err, source.ErrNotFound) {
				return nil, nil
			}
			return nil, err
		}
		part.noteTruncated(src, set)
		var keep []mapped
		for _, m := range set.items {
			if r4.TypeName(m.res) == resourceType {
				keep = append(keep, m)
			}
		}
		if resourceType == "Observation" {
			// The migration context split off the Patient is one of the
			// patient's Observations; release decides whether it goes.
			pat, err := s.readMapped(ctx, req, src, "Patient", upstream)
			if err != nil && !errors.Is(err, source.ErrNotFound) {
				return nil, err
			}
			for _, m := range pat.items {
				if r4.TypeName(m.res) == "Observation" {
					keep = append(keep, m)
				}
			}
		}
		return s.release(ctx, req, src, keep, part)
	})
	return res, err
}

// locate decodes a gateway id into its source and upstream id.
func (s *Service) locate(resourceType, id string) (Source, string, error) {
	srcID, upstream, err := s.opts.IDs.Decode(resourceType, id)
	if err != nil {
		// An id the gateway did not mint names nothing here.
		return nil, "", ErrNotFound
	}
	src, ok := s.byID[srcID]
	if !ok {
		// A source that is no longer configured.
		return nil, "", ErrNotFound
	}
	return src, upstream, nil
}

// fanOut runs fn for every source the query phase permits, in parallel,
// under the request deadline, each source under its own timeout and with a
// Result slot of its own, absorbed into res in source order. Failed
// sources become warnings. Sources the policy refused leave no trace in the
// result beyond the audited decision, so a warning can never reveal a
// record in a country the requester may not ask.
func (s *Service) fanOut(ctx context.Context, req Request, res *Result, sources []Source, fn func(context.Context, Source, *Result) ([]Entry, error)) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Deadline)
	defer cancel()
	var allowed []Source
	var reasons []string
	for _, src := range sources {
		d, _ := s.permitted(ctx, req, src, res)
		if d.Allow {
			allowed = append(allowed, src)
		} else {
			reasons = append(reasons, d.Reasons...)
		}
	}
	if len(allowed) == 0 {
		return &DeniedError{Reasons: dedupe(reasons)}
	}
	type outcome struct {
		entries []Entry
		err     error
		part    Result
	}
	for _, src := range allowed {
		res.Contacted = append(res.Contacted, src.ID())
	}
	outs := inParallel(allowed, func(src Source) (o outcome) {
		sctx, scancel := context.WithTimeout(ctx, s.opts.SourceTimeout)
		defer scancel()
		o.entries, o.err = fn(sctx, src, &o.part)
		return o
	})
	var fails failures
	for i := range outs {
		o := &outs[i]
		res.absorb(&o.part)
		if o.err != nil {
			res.Warnings = append(res.Warnings, Warning{Source: allowed[i].ID(), Code: s.sourceFailed(ctx, &fails, allowed[i].ID(), o.err)})
			continue
		}
		res.Entries = append(res.Entries, o.entries...)
	}
	if fails.n == len(allowed) {
		return fails.err()
	}
	return nil
}

func sourceError(err error) error {
	var fails failures
	fails.add(err)
	if fails.timeouts > 0 {
		return fails.err()
	}
	return fmt.Errorf("%w: %w", fails.err(), err)
}

// release asks the release phase about every mapped resource and applies
// the obligations of those allowed. Denied resources are dropped without a
// trace in the response (their decisions are audited).
func (s *Service) release(ctx context.Context, req Request, src Source, set []mapped, res *Result) ([]Entry, error) {
	// Consent is looked up once per patient. A patient whose consent cannot
	// be read gets nothing released: the gateway cannot know that the
	// patient has not refused.
	consents := map[string][]authz.Provision{}
	// Resources of one patient with the same facts get the same decision:
	// it is taken once per request (never shared between requests or
	// requesters) and reused, which is what makes a search of hundreds of
	// Observations affordable.
	decided := map[string]authz.Decision{}
	var out []Entry
	for _, m := range set {
		patient := patientRef(m.res)
		provs, ok := consents[patient]
		if !ok {
			provs = []authz.Provision{}
			if patient != "" {
				_, upstream, err := s.opts.IDs.Decode("Patient", patient)
				if err != nil {
					return nil, fmt.Errorf("%w: resource references a patient of another source", source.ErrInvalidResponse)
				}
				p, err := s.consentProvisions(ctx, req, src, upstream)
				if err != nil {
					return nil, fmt.Errorf("consent lookup: %w", err)
				}
				provs = p
			}
			consents[patient] = provs
		}
		facts := resourceFacts(m.res)
		in := authz.Input{
			Phase:     authz.PhaseRelease,
			Requester: req.Requester,
			Action:    action(req),
			Source:    &authz.Source{ID: src.ID(), Country: src.Country()},
			Resource:  facts,
			Consent:   provs,
		}
		key := factsKey(patient, facts)
		d, seen := decided[key]
		if !seen {
			d = s.decide(ctx, in)
			decided[key] = d
			res.addDecision(authz.PhaseRelease, src.ID(), facts.Class, d)
		}
		if !d.Allow {
			continue
		}
		contained := containedCount(m.res)
		if err := authz.Apply(m.res, d.Obligations); err != nil {
			// An obligation that cannot be met means no release.
			s.log.ErrorContext(ctx, "obligation not applicable", string(telemetry.AttrSourceID), src.ID(), "error", err)
			continue
		}
		loss := lossFor(m.loss, req.Requester.Country == src.Country())
		if contained > containedCount(m.res) {
			res, withheld, err := resolveContained(m.res)
			if err != nil {
				s.log.ErrorContext(ctx, "contained references not repaired", string(telemetry.AttrSourceID), src.ID(), "error", err)
				continue
			}
			m.res, loss = res, append(loss, withheld...)
		}
		out = append(out, Entry{
			Resource: m.res, Type: facts.Type, ID: r4.ID(m.res), Source: src.ID(),
			Loss: loss,
		})
	}
	return out, nil
}

func dedupe(xs []string) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// noteTruncated warns that a source's search stopped before its last
// page, or that the source returned resources that are not valid R4 (left
// out): an incomplete record must not pass for a complete one.
func (r *Result) noteTruncated(src Source, set mappedSet) {
	if set.truncated {
		r.Warnings = append(r.Warnings, set.warning(src))
	}
	if set.dropped {
		r.Warnings = append(r.Warnings, Warning{Source: src.ID(), Code: WarnIncomplete})
	}
}

// Authorize takes the decision for a request that contacts no source:
// audit records, the mapping service, administration. The policy sees no
// source and decides on the requester, the action and the data class.
func (s *Service) Authorize(ctx context.Context, req Request) (*Result, error) {
	res := &Result{}
	in := authz.Input{Phase: authz.PhaseQuery, Requester: req.Requester, Action: action(req), Consent: []authz.Provision{}}
	d := s.decide(ctx, in)
	res.addDecision(authz.PhaseQuery, "", "", d)
	if !d.Allow {
		return res, &DeniedError{Reasons: d.Reasons}
	}
	return res, nil
}

// patientTag groups what the cache holds about one patient of one source,
// so that a consent change can drop it all (Service.ForgetPatient).
func patientTag(src Source, upstream string) string { return "patient:" + src.ID() + "/" + upstream }

// ErrNoCache is returned by the purge operations when no cache that can
// purge is in use.
var ErrNoCache = errors.New("no cache in use")

func (s *Service) purger() (Purger, error) {
	p, ok := s.opts.Cache.(Purger)
	if !ok {
		return nil, ErrNoCache
	}
	return p, nil
}

// ForgetPatient drops everything the cache holds about one patient (the
// patient's resources, searches and consent), so that the next request
// reads them, and the patient's consent, afresh: what a consent change
// needs. patientID is a gateway Patient id.
func (s *Service) ForgetPatient(ctx context.Context, patientID string) (int, error) {
	p, err := s.purger()
	if err != nil {
		return 0, err
	}
	src, upstream, err := s.locate("Patient", patientID)
	if err != nil {
		return 0, err
	}
	n, err := p.PurgeTag(ctx, patientTag(src, upstream))
	if err != nil {
		return n, fmt.Errorf("forget patient: %w", err)
	}
	return n, nil
}

// PurgeSource drops everything the cache holds from one source.
func (s *Service) PurgeSource(ctx context.Context, sourceID string) (int, error) {
	p, err := s.purger()
	if err != nil {
		return 0, err
	}
	if _, ok := s.byID[sourceID]; !ok {
		return 0, fmt.Errorf("%w: unknown source", ErrNotFound)
	}
	n, err := p.PurgeSource(ctx, sourceID)
	if err != nil {
		return n, fmt.Errorf("purge source %s: %w", sourceID, err)
	}
	return n, nil
}

// factsKey identifies a release decision within one request: the patient
// (whose consent is in the input) and everything the input says about the
// resource.
func factsKey(patient string, f *authz.Resource) string {
	var b strings.Builder
	b.WriteString(patient)
	b.WriteByte(0)
	b.WriteString(f.Type)
	b.WriteByte(0)
	b.WriteString(f.Class)
	for _, c := range f.Security {
		b.WriteByte(0)
		b.WriteString(c.System)
		b.WriteByte('|')
		b.WriteString(c.Code)
	}
	b.WriteByte(1)
	for _, c := range f.Category {
		b.WriteByte(0)
		b.WriteString(c)
	}
	return b.String()
}

// lossFor is the part of a loss report a requester may read: abroad, not
// the issues that say the record held a protected attribute which never
// leaves its country of origin (mappings.Issue.Domestic).
func lossFor(issues []mappings.Issue, domestic bool) []mappings.Issue {
	if domestic {
		return issues
	}
	out := issues[:0:0]
	for _, is := range issues {
		if !is.Domestic {
			out = append(out, is)
		}
	}
	return out
}
