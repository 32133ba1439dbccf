package federate

import (
	"context"
	"slices"

	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/gateway/authz"
	"github.com/migrant-health/mhg/gateway/match"
	"github.com/migrant-health/mhg/gateway/summary"
)

// linkByMatch looks for the person, by demographics, in the sources no
// identifier linked: the traits of the record the summary is anchored on
// are a Patient/$match of their own, decided by the query phase as one
// (operation match), bounded by its obligations, and scored by the same
// model. The decision is asked with every trait kind, whatever the record
// holds: what the patient's record says (a birth date known or not) must
// never reach the policy. The source's required kinds, which the
// obligation repeats, are then checked here: a source whose rules need a
// trait the record lacks is not asked. A record is linked only when it is the one
// certain match of its source; probable ones are never merged (a clinician
// who recognises one asks for its own summary, which anchors on it).
func (r *resolution) linkByMatch(ctx context.Context) {
	base := r.anchor
	if base == nil {
		for _, src := range r.l.svc.sources {
			if ln, ok := r.linked[src.ID()]; ok {
				base = ln
				break
			}
		}
	}
	// The anchor's traits are read only when some source may still be
	// linked: when every source answered by identifier, the demographic
	// round has nothing to do.
	var left []Source
	for _, src := range r.l.svc.sources {
		if _, linked := r.linked[src.ID()]; r.allowed[src.ID()] && !r.done[src.ID()] && !linked {
			left = append(left, src)
		}
	}
	if len(left) == 0 {
		return
	}
	js, err := r4.Marshal(base.patient.Resource)
	if err != nil {
		return
	}
	traits, err := PatientTraits(js, base.src.Country())
	if err != nil || len(traits.Names) == 0 {
		return
	}
	model := r.l.svc.opts.MatchModel
	if model == nil {
		model = match.Default()
	}
	query := model.Prepare(traits)
	mreq := r.req
	mreq.Interaction, mreq.Operation, mreq.MatchTraits = "operation", opMatch, match.Kinds
	held := traits.Kinds()
	for _, src := range left {
		d, _ := r.l.svc.permitted(ctx, mreq, src, r.res)
		if !d.Allow {
			continue
		}
		var ob *authz.Obligation
		for i, o := range d.Obligations {
			if o.Kind == authz.ObligationMatch {
				ob = &d.Obligations[i]
			}
		}
		if ob == nil || slices.ContainsFunc(ob.Required, func(k string) bool { return !slices.Contains(held, k) }) {
			continue
		}
		r.linkOne(ctx, mreq, src, model, query, traits.Only(ob.Traits))
	}
}

// opMatch is the operation name demographic linking is decided as.
const opMatch = "match"

// linkOne asks one source for the person by demographics and links its
// record when it is the one certain match.
func (r *resolution) linkOne(ctx context.Context, mreq Request, src Source, model *match.Model, query *match.Record, sent match.Traits) {
	ctx, cancel := context.WithTimeout(ctx, r.l.svc.opts.SourceTimeout)
	defer cancel()
	r.res.contacted(src.ID())
	items, err := r.l.svc.matchCandidates(ctx, mreq, src, sent, 0, ruleOut(model, query, sent.Kinds()))
	r.count(err)
	if err != nil {
		r.done[src.ID()] = true
		r.res.warn(src.ID(), errorClass(err))
		return
	}
	persons := personsOf(items)
	var found *person
	var score float64
	certain := 0
	for id, p := range persons {
		js, err := r4.Marshal(p.patient.res)
		if err != nil {
			continue
		}
		t, err := PatientTraits(js, src.Country())
		if err != nil {
			continue
		}
		if res := model.Compare(query, model.Prepare(t)); res.Grade == match.Certain {
			certain++
			found, score = persons[id], res.Score
		}
	}
	switch {
	case certain == 0:
		return
	case certain > 1:
		r.done[src.ID()] = true
		r.res.warn(src.ID(), WarnAmbiguous)
		return
	}
	// The release phase decides on the Patient as for any other link.
	ln, err := r.l.release(ctx, r.req, r.res, src, found)
	if err != nil || ln == nil {
		r.done[src.ID()] = true
		return
	}
	ln.how = linkHow{By: summary.LinkMatch, Score: score}
	r.accept(ln)
}
