package federate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"go.opentelemetry.io/otel/attribute"

	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/gateway/authz"
	"github.com/migrant-health/mhg/gateway/cache"
	"github.com/migrant-health/mhg/gateway/match"
	"github.com/migrant-health/mhg/gateway/source"
	"github.com/migrant-health/mhg/gateway/telemetry"
)

// Demographic search (Patient/$match) as a source may offer it.
type (
	// demographicSource says how a source is searched by demographics:
	// source.PatientMatchSearch, PatientMatchPhonetic or
	// PatientMatchOperation. A source without it is searched with
	// standard searches.
	demographicSource interface {
		PatientMatch() string
	}
	// patientMatcher is a source that answers Patient/$match itself.
	patientMatcher interface {
		MatchPatients(ctx context.Context, parameters []byte) ([]source.Resource, error)
	}
)

// Errors of a demographic search that callers branch on.
var (
	// ErrTraits: no source may be asked with the traits given; with more
	// (the kinds the agreements require) some could be. errors.As gives a
	// *TraitsError.
	ErrTraits = errors.New("not enough traits")
)

// TraitsError says which sources need more traits than a search gave.
type TraitsError struct {
	// Sources are the ids of the sources refused for want of traits.
	Sources []string
}

func (e *TraitsError) Error() string {
	return fmt.Sprintf("not enough traits for the rules of %d source(s)", len(e.Sources))
}

// Is makes errors.Is(err, ErrTraits) true.
func (e *TraitsError) Is(target error) bool { return target == ErrTraits }

// Warning codes of a demographic search.
const (
	// WarnTraits: the source's rules need more traits than were given; it
	// was not asked.
	WarnTraits = "traits"
	// WarnRefused: the source answered that the request would break its
	// rules.
	WarnRefused = "refused"
	// WarnConfidence: no candidate reached the grade the request needs
	// (onlyCertainMatches). Source is empty.
	WarnConfidence = "confidence"
)

// reasonTraits is the policy reason of a source refused for want of
// traits.
const reasonTraits = "match.traits-insufficient"

// MatchRequest is one Patient/$match.
type MatchRequest struct {
	// Traits are the demographics of the patient sought. Country is the
	// requester's.
	Traits match.Traits
	// OnlyCertain asks for one certain match or none.
	OnlyCertain bool
	// Count bounds the candidates returned; zero means no bound.
	Count int
}

// MatchInfo is how a candidate matched.
type MatchInfo struct {
	// Score is the probability that the candidate is the person sought.
	Score float64
	// Grade is its match grade.
	Grade match.Grade
}

// Match finds the person described by mr.Traits in every source the
// policy lets the requester search by demographics (Patient/$match): the
// query phase sees the kinds of trait given (req.MatchTraits, set here)
// and says, per source, which may be sent and the lowest grade that may
// come back. A source that answers $match gets the request with only
// those traits; the others are searched with standard or phonetic name
// and birth-date searches. Every candidate is scored with the gateway's
// model (so a grade means the same whichever source answered), candidates
// below the grade the source's rules allow are dropped before the release
// phase sees them, and the released ones come back sorted by score, each
// with its MatchInfo.
//
// When no source may be asked for want of traits, the error is a
// *TraitsError; when mr.OnlyCertain and not exactly one candidate is
// certain, the result holds no entries and a WarnConfidence warning,
// whether there were other candidates or none.
func (s *Service) Match(ctx context.Context, req Request, mr MatchRequest) (*Result, error) {
	ctx, span := tracer().Start(ctx, telemetry.SpanFederateMatch)
	defer span.End()
	res := &Result{}
	kinds := mr.Traits.Kinds()
	if !slices.Contains(kinds, match.KindFamily) && !slices.Contains(kinds, match.KindGiven) {
		return res, fmt.Errorf("%w: the Patient needs a name to match on", ErrInvalid)
	}
	req.MatchTraits = kinds
	req.Operation = opMatch
	model := s.opts.MatchModel
	if model == nil {
		model = match.Default()
	}
	query := model.Prepare(mr.Traits)

	err := s.fanOut(ctx, req, res, s.sources, func(ctx context.Context, src Source, part *Result) ([]Entry, error) {
		ob, ok := matchObligation(res, src.ID())
		if !ok {
			// A policy that allows without bounding the search is not
			// followed: nothing is sent.
			return nil, fmt.Errorf("%w: the policy gave no match obligation", source.ErrRejected)
		}
		lowest, ok := match.ParseGrade(ob.Grade)
		if !ok {
			return nil, fmt.Errorf("%w: the policy gave an unknown grade", source.ErrRejected)
		}
		sent := mr.Traits.Only(ob.Traits)
		items, err := s.matchCandidates(ctx, req, src, sent, mr.Count, ruleOut(model, query, kinds))
		if err != nil {
			if errors.Is(err, source.ErrNotFound) {
				return nil, nil
			}
			if errors.Is(err, source.ErrRejected) {
				part.warn(src.ID(), WarnRefused)
				return nil, nil
			}
			return nil, err
		}
		// Score, and keep what the source's rules let through.
		infos := map[string]MatchInfo{}
		var keep []mapped
		for _, m := range patientsOf(items) {
			js, err := r4.Marshal(m.res)
			if err != nil {
				continue
			}
			t, err := PatientTraits(js, src.Country())
			if err != nil {
				continue
			}
			r := model.Compare(query, model.Prepare(t))
			if r.Grade == match.CertainlyNot || !r.Grade.AtLeast(lowest) {
				continue
			}
			infos[r4.ID(m.res)] = MatchInfo{Score: r.Score, Grade: r.Grade}
			keep = append(keep, m)
		}
		entries, err := s.release(ctx, req, src, keep, part)
		if err != nil {
			return nil, err
		}
		for i := range entries {
			info := infos[entries[i].ID]
			entries[i].Match = &info
		}
		return entries, nil
	})

	// Sources refused only for want of traits are named: that says what
	// their country requires, nothing about the person.
	var short []string
	for _, d := range res.Decisions {
		if d.Phase == authz.PhaseQuery && !d.Decision.Allow && slices.Equal(d.Decision.Reasons, []string{reasonTraits}) {
			short = append(short, d.Source)
		}
	}
	if err != nil {
		var denied *DeniedError
		if errors.As(err, &denied) && len(short) > 0 {
			return res, &TraitsError{Sources: short}
		}
		return res, err
	}
	for _, id := range short {
		res.warn(id, WarnTraits)
	}

	slices.SortStableFunc(res.Entries, func(a, b Entry) int { return cmp.Compare(b.Match.Score, a.Match.Score) })
	if mr.OnlyCertain {
		var certain []Entry
		for _, e := range res.Entries {
			if e.Match.Grade == match.Certain {
				certain = append(certain, e)
			}
		}
		if len(certain) != 1 {
			// The same answer whether nobody matched or several did.
			certain = nil
			res.warn("", WarnConfidence)
		}
		res.Entries = certain
	}
	if mr.Count > 0 && len(res.Entries) > mr.Count {
		res.Entries = res.Entries[:mr.Count]
	}
	span.SetAttributes(attribute.Int(string(telemetry.AttrCount), len(res.Entries)))
	return res, nil
}

// matchObligation finds the match obligation of the query decision on src.
// The query decisions are all taken before the sources are asked, and res
// is only read while they answer.
func matchObligation(res *Result, src string) (authz.Obligation, bool) {
	for _, d := range res.Decisions {
		if d.Phase != authz.PhaseQuery || d.Source != src || !d.Decision.Allow {
			continue
		}
		for _, o := range d.Decision.Obligations {
			if o.Kind == authz.ObligationMatch {
				return o, true
			}
		}
	}
	return authz.Obligation{}, false
}

// matchCandidates asks one source for the Patients that may be the person
// (with what the mapping split off them): a source that answers $match
// gets it forwarded, through the cache (whose keys are hashed, never the
// traits in clear); the others are narrowed with searches, and keep says
// which of their records are worth mapping.
func (s *Service) matchCandidates(ctx context.Context, req Request, src Source, t match.Traits, count int, keep func([]byte, string) bool) ([]mapped, error) {
	mode := source.PatientMatchSearch
	if d, ok := src.(demographicSource); ok {
		mode = d.PatientMatch()
	}
	if pm, ok := src.(patientMatcher); ok && mode == source.PatientMatchOperation {
		body, err := MatchParameters(t, false, count)
		if err != nil {
			return nil, err
		}
		set, err := s.fetchMapped(ctx, req, src, cache.KindSearch, []string{"Patient", "$match", string(body)}, nil,
			func(ctx context.Context) ([]source.Resource, error) { return pm.MatchPatients(ctx, body) })
		if err != nil {
			return nil, err
		}
		return set.items, nil
	}
	// Narrowing searches bring back many people who only share a name or
	// a birth year: they are weighed on the source's own record first and
	// only those the model does not rule out are mapped. What comes back
	// is not cached: it is a search by a person's demographics.
	ctx, span := tracer().Start(ctx, telemetry.SpanSourceFetch)
	span.SetAttributes(telemetry.AttrSourceID.String(src.ID()), telemetry.AttrResourceType.String("Patient"))
	seen := map[string]bool{}
	var raw []source.Resource
	var failure error
	for _, params := range narrowingSearches(t, mode == source.PatientMatchPhonetic) {
		found, err := src.Search(ctx, "Patient", params)
		if errors.Is(err, source.ErrTruncated) && len(found) > 0 {
			err = nil
		}
		if err != nil {
			if !errors.Is(err, source.ErrNotFound) {
				failure = err
			}
			continue
		}
		for _, r := range found {
			if r.Type != "Patient" || seen[r.ID] {
				continue
			}
			seen[r.ID] = true
			if keep == nil || keep(r.JSON, src.Country()) {
				raw = append(raw, r)
			}
		}
	}
	span.SetAttributes(attribute.Int(string(telemetry.AttrCount), len(raw)))
	span.End()
	if failure != nil && len(raw) == 0 {
		return nil, failure
	}
	if len(raw) == 0 {
		return nil, nil
	}
	return s.mapAll(ctx, src, raw)
}

// ruleOut returns a filter that keeps a source's raw Patient unless the
// model rules it out on what the raw record says (names, birth date,
// gender and identifiers read the same in every national profile): its
// weight below the possible grade by more than the mapping could add
// (agreement on country of birth and citizenship, which national profiles
// keep in extensions of their own).
func ruleOut(model *match.Model, query *match.Record, kinds []string) func([]byte, string) bool {
	floor := model.Spec().Thresholds.Possible
	if slices.Contains(kinds, match.KindBirthPlace) {
		floor -= max(0, model.Weight("", match.FieldBirthPlace, match.Agree))
	}
	if slices.Contains(kinds, match.KindCitizenship) {
		floor -= max(0, model.Weight("", match.FieldCitizenship, match.Agree))
	}
	return func(js []byte, country string) bool {
		t, err := PatientTraits(js, country)
		if err != nil {
			return true
		}
		return model.Compare(query, model.Prepare(t)).Weight >= floor
	}
}

func patientsOf(items []mapped) []mapped {
	var out []mapped
	for _, m := range items {
		if r4.TypeName(m.res) == "Patient" {
			out = append(out, m)
		}
	}
	return out
}

// narrowingSearches are the standard searches that bring back the
// candidates of a source that does not answer $match: both names
// together, and each name with the birth year (a year either side, for
// estimated dates), so that a typing error in one name or a swapped order
// still finds the record. With phonetic, the names are matched by the
// source's phonetic parameter (across spellings and scripts); otherwise
// by family and given with the spellings at hand: as written, in Latin
// letters, and without an article. An identifier, when it may be sent,
// is one more search.
func narrowingSearches(t match.Traits, phonetic bool) []url.Values {
	var families, givens []string
	for _, n := range t.Names {
		families = appendSpellings(families, n.Family)
		if len(n.Given) > 0 {
			givens = appendSpellings(givens, n.Given[0])
		}
	}
	var dates []string
	if y := t.BirthDate.Year; y > 1 {
		dates = []string{fmt.Sprintf("ge%04d-01-01", y-1), fmt.Sprintf("le%04d-12-31", y+1)}
	}
	fam, giv := "family", "given"
	if phonetic {
		fam, giv = "phonetic", "phonetic"
	}
	var out []url.Values
	add := func(v url.Values) { out = append(out, v) }
	switch {
	case len(families) > 0 && len(givens) > 0 && phonetic:
		add(url.Values{"phonetic": {escapeAll(families), escapeAll(givens)}})
	case len(families) > 0 && len(givens) > 0:
		add(url.Values{"family": {escapeAll(families)}, "given": {escapeAll(givens)}})
	}
	if len(dates) > 0 {
		if len(families) > 0 {
			add(url.Values{fam: {escapeAll(families)}, "birthdate": dates})
		}
		if len(givens) > 0 {
			add(url.Values{giv: {escapeAll(givens)}, "birthdate": dates})
		}
	}
	if len(out) == 0 {
		// A single name and no birth date: the name alone.
		if len(families) > 0 {
			add(url.Values{fam: {escapeAll(families)}})
		} else if len(givens) > 0 {
			add(url.Values{giv: {escapeAll(givens)}})
		}
	}
	var ids []string
	for _, id := range t.Identifiers {
		ids = append(ids, r4.TokenValue(id.System, id.Value))
	}
	if len(ids) > 0 {
		slices.Sort(ids)
		add(url.Values{"identifier": {strings.Join(slices.Compact(ids), ",")}})
	}
	return out
}

// appendSpellings adds a name as written, in Latin letters, and without
// a leading article, once each.
func appendSpellings(list []string, name string) []string {
	name = strings.TrimSpace(name)
	if name == "" {
		return list
	}
	forms := []string{name, strings.TrimSpace(match.Latin(name))}
	for _, f := range forms[:2] {
		for _, art := range []string{"al-", "el-", "al ", "el "} {
			if strings.HasPrefix(strings.ToLower(f), art) && len(f) > len(art)+2 {
				forms = append(forms, f[len(art):])
			}
		}
	}
	for _, f := range forms {
		if f != "" && !slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, f) }) {
			list = append(list, f)
		}
	}
	return list
}

// escapeAll joins alternatives of a string search, escaping FHIR's
// separators inside each.
func escapeAll(vs []string) string {
	esc := strings.NewReplacer(`\`, `\\`, `,`, `\,`, `$`, `\$`, `|`, `\|`)
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = esc.Replace(v)
	}
	return strings.Join(out, ",")
}
