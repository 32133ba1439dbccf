package federate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/migrant-health/mhg/conformance/measures"
	"github.com/migrant-health/mhg/gateway/authz"
	"github.com/migrant-health/mhg/gateway/disclosure"
	"github.com/migrant-health/mhg/gateway/stats"
	"github.com/migrant-health/mhg/gateway/telemetry"
)

// StatisticsRequest is one Measure/{id}/$evaluate-measure.
type StatisticsRequest struct {
	// Measure is the Measure id.
	Measure string
	// Start and End are the requested period's first and last days.
	Start, End time.Time
	// Strata are catalogue codes (at most two).
	Strata []string
}

// Statistics is what an evaluation released, with what decided it.
type Statistics struct {
	// Report is the released table (it passed the auditor's check).
	Report *stats.Report
	// Rules are the disclosure terms applied: the strictest k and rounding
	// of the sources asked.
	Rules disclosure.Rules
	// Grain is the coarsest grain of the sources asked; Report.Period is
	// the requested period widened to whole grains.
	Grain string
}

// Errors of statistics requests callers branch on.
var (
	// ErrStatisticsOff: the gateway has no measures (Options.Measures).
	ErrStatisticsOff = errors.New("statistics are not enabled")
	// ErrDisclosive: the released table failed the auditor's check; it
	// is never sent (a bug in disclosure control, failed closed).
	ErrDisclosive = errors.New("the table could not be protected")
)

// grainMonths are the grains' lengths (authz.Grains), the coarsest last.
func grainMonths(g string) int { return authz.Grains[g] }

// monthsOf snaps a period to whole calendar months and counts them.
func monthsOf(start, end time.Time) (measures.Period, int) {
	s := time.Date(start.Year(), start.Month(), 1, 0, 0, 0, 0, time.UTC)
	e := time.Date(end.Year(), end.Month()+1, 0, 0, 0, 0, 0, time.UTC)
	n := (e.Year()-s.Year())*12 + int(e.Month()-s.Month()) + 1
	return measures.Period{Start: s, End: e}, n
}

// widen extends a month-aligned period to whole grains of n months,
// counted from January: a quarter starts in January, April, July or
// October. The same request thus always covers the same days, and two
// reports can only differ by whole grains.
func widen(p measures.Period, n int) measures.Period {
	if n <= 1 {
		return p
	}
	sm := (int(p.Start.Month())-1)/n*n + 1
	em := (int(p.End.Month())-1)/n*n + n
	return measures.Period{
		Start: time.Date(p.Start.Year(), time.Month(sm), 1, 0, 0, 0, 0, time.UTC),
		End:   time.Date(p.End.Year(), time.Month(em)+1, 0, 0, 0, 0, 0, time.UTC),
	}
}

// EvaluateMeasure evaluates a measure over every source the policy permits
// for it: the query phase decides per source with the measure, strata and
// period (statistics.rego) and gives each permitted source's disclosure
// terms; the strictest k and rounding and the coarsest grain apply, and
// the period is widened to whole grains. Permitted sources are evaluated
// in parallel under Options.StatisticsDeadline; only their counts come
// back. A source that fails or is refused is named in the report, which is
// then incomplete; none permitted is ErrDenied, none answering
// ErrSourcesFailed. The merged table is released under disclosure control,
// checked again as an auditor would, and the release phase decides on the
// report itself.
func (s *Service) EvaluateMeasure(ctx context.Context, req Request, sr StatisticsRequest) (*Result, *Statistics, error) {
	res := &Result{}
	cat := s.opts.Measures
	if cat == nil {
		return res, nil, ErrStatisticsOff
	}
	m, ok := cat.Measure(sr.Measure)
	if !ok {
		return res, nil, fmt.Errorf("%w: no measure of that id", ErrNotFound)
	}
	sts, err := stats.Stratifiers(sr.Strata)
	if err != nil {
		return res, nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if sr.End.Before(sr.Start) {
		return res, nil, fmt.Errorf("%w: periodEnd is before periodStart", ErrInvalid)
	}
	period, months := monthsOf(sr.Start, sr.End)
	in := &authz.Statistics{Measure: m.ID, Protected: len(m.Sensitivity) > 0, Strata: []authz.Stratum{}, PeriodMonths: months}
	for _, st := range sts {
		in.Strata = append(in.Strata, authz.Stratum{Code: st.Code, Class: st.Class})
	}
	// The deadline bounds the decisions and the reads of the sources. The
	// table's protection and its release decision come after and run under
	// the request's own context: a read that ended just in time must not
	// turn into a policy refusal (engine.error) because the deadline passed
	// while the table was being protected.
	reqCtx := ctx
	ctx, cancel := context.WithTimeout(ctx, s.opts.StatisticsDeadline)
	defer cancel()

	var allowed []Source
	var refused, reasons []string
	rules, grain := disclosure.Rules{}, ""
	for _, src := range s.sources {
		d := s.decide(ctx, authz.Input{Phase: authz.PhaseQuery, Requester: req.Requester, Action: action(req),
			Source: &authz.Source{ID: src.ID(), Country: src.Country()}, Consent: []authz.Provision{}, Statistics: in})
		res.addDecision(authz.PhaseQuery, src.ID(), "", d)
		terms := slices.IndexFunc(d.Obligations, func(o authz.Obligation) bool { return o.Kind == authz.ObligationStatistics })
		if !d.Allow || terms < 0 {
			// Allowed without terms would release under no control:
			// refused (fail closed).
			refused = append(refused, src.ID())
			if !d.Allow {
				reasons = append(reasons, d.Reasons...)
			} else {
				reasons = append(reasons, "statistics.terms-missing")
			}
			continue
		}
		allowed = append(allowed, src)
		for _, o := range d.Obligations {
			if o.Kind != authz.ObligationStatistics {
				continue
			}
			rules.K = max(rules.K, o.K)
			rules.Rounding = max(rules.Rounding, o.Rounding)
			if grainMonths(o.Grain) > grainMonths(grain) {
				grain = o.Grain
			}
		}
	}
	if len(allowed) == 0 {
		return res, nil, &DeniedError{Reasons: dedupe(reasons)}
	}
	period = widen(period, grainMonths(grain))

	ev := stats.New(cat, s.opts.Mapper)
	type outcome struct {
		counts stats.Counts
		err    error
	}
	for _, src := range allowed {
		res.Contacted = append(res.Contacted, src.ID())
	}
	outs := inParallel(allowed, func(src Source) (o outcome) {
		ctx, span := tracer().Start(ctx, telemetry.SpanSourceFetch)
		span.SetAttributes(telemetry.AttrSourceID.String(src.ID()))
		defer span.End()
		o.counts, o.err = ev.EvaluateSource(ctx, src, stats.Request{Measure: m, Period: period, Strata: sr.Strata})
		return o
	})
	merged := stats.Counts{}
	var failed []string
	var fails failures
	for i, o := range outs {
		if o.err != nil {
			res.Warnings = append(res.Warnings, Warning{Source: allowed[i].ID(), Code: s.sourceFailed(ctx, &fails, allowed[i].ID(), o.err)})
			failed = append(failed, allowed[i].ID())
			continue
		}
		merged.Merge(o.counts)
	}
	if fails.n == len(allowed) {
		return res, nil, fails.err()
	}
	rep, err := stats.Release(m, period, sr.Strata, merged, rules)
	if err != nil {
		return res, nil, fmt.Errorf("%w: %w", ErrDisclosive, err)
	}
	if err := disclosure.Check(rep.Release); err != nil {
		return res, nil, fmt.Errorf("%w: %w", ErrDisclosive, err)
	}
	rep.Failed, rep.Refused, rep.Grain = failed, refused, grain
	d := s.decide(reqCtx, authz.Input{Phase: authz.PhaseRelease, Requester: req.Requester, Action: action(req),
		Resource: &authz.Resource{Type: "MeasureReport", Security: []authz.Coding{}, Category: []string{}, Class: "aggregate"},
		Consent:  []authz.Provision{}, Statistics: in})
	res.addDecision(authz.PhaseRelease, "", "aggregate", d)
	if !d.Allow {
		return res, nil, &DeniedError{Reasons: d.Reasons}
	}
	return res, &Statistics{Report: rep, Rules: rep.Release.Rules, Grain: grain}, nil
}
