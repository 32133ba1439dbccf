package authz

import (
	"math"
	"time"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/migrant-health/mhg/gateway/auth"
)

// normalized returns in with every nil list made empty, so that the JSON
// form (decision logs, explain) and the Rego value agree and policies never
// meet null where the schema promises an array.
func (in Input) normalized() Input {
	in.Requester.Scopes = nonNil(in.Requester.Scopes)
	if in.Resource != nil {
		r := *in.Resource
		if r.Security == nil {
			r.Security = []Coding{}
		}
		r.Category = nonNil(r.Category)
		in.Resource = &r
	}
	if in.Match != nil {
		in.Match = &Match{Traits: nonNil(in.Match.Traits)}
	}
	if in.Statistics != nil {
		st := *in.Statistics
		if st.Strata == nil {
			st.Strata = []Stratum{}
		}
		in.Statistics = &st
	}
	if in.Consent == nil {
		in.Consent = []Provision{}
	} else {
		consent := make([]Provision, len(in.Consent))
		// One block holds every provision's period bounds.
		bounds := make([]int64, 2*len(in.Consent))
		for i, p := range in.Consent {
			p.ActorCountries = nonNil(p.ActorCountries)
			p.ActorOrgs = nonNil(p.ActorOrgs)
			p.Purposes = nonNil(p.Purposes)
			p.Classes = nonNil(p.Classes)
			p.SecurityLabels = nonNil(p.SecurityLabels)
			p.StartNS, p.EndNS = nil, nil
			if ns, ok := periodStart(p.Start); ok {
				bounds[2*i] = ns
				p.StartNS = &bounds[2*i]
			}
			if ns, ok := periodEnd(p.End); ok {
				bounds[2*i+1] = ns
				p.EndNS = &bounds[2*i+1]
			}
			consent[i] = p
		}
		in.Consent = consent
	}
	return in
}

// FHIR dates may be partial (2024, 2024-05, 2024-05-17) or full
// date-times; the layout follows from the length in characters.
var dateLayouts = map[int]string{4: "2006", 7: "2006-01", 10: time.DateOnly}

// periodStart reads the start of a provision's period: the first instant
// of a partial date (UTC), or the date-time. A bound that is absent or
// cannot be read, or lies outside what nanoseconds since 1970 can hold,
// gives no instant (ok false).
func periodStart(s string) (ns int64, ok bool) {
	t, ok := parsePeriodDate(s)
	if !ok {
		return 0, false
	}
	return safeUnixNano(t)
}

// periodEnd reads the end of a provision's period: the first instant after
// it, so that a partial end date includes its whole year, month or day.
func periodEnd(s string) (ns int64, ok bool) {
	t, ok := parsePeriodDate(s)
	if !ok {
		return 0, false
	}
	if _, ok := safeUnixNano(t); !ok {
		return 0, false
	}
	switch utf8.RuneCountInString(s) {
	case 4:
		t = t.AddDate(1, 0, 0)
	case 7:
		t = t.AddDate(0, 1, 0)
	case 10:
		t = t.AddDate(0, 0, 1)
	}
	return safeUnixNano(t)
}

func parsePeriodDate(s string) (time.Time, bool) {
	n := utf8.RuneCountInString(s)
	layout, ok := dateLayouts[n]
	if !ok {
		if n <= 10 {
			return time.Time{}, false
		}
		layout = time.RFC3339
	}
	t, err := time.Parse(layout, s)
	return t.UTC(), err == nil
}

var (
	minUnixNano = time.Unix(0, math.MinInt64)
	maxUnixNano = time.Unix(0, math.MaxInt64)
)

func safeUnixNano(t time.Time) (int64, bool) {
	if t.Before(minUnixNano) || t.After(maxUnixNano) {
		return 0, false
	}
	return t.UnixNano(), true
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// value renders a normalized Input as the Rego value its JSON form would
// parse to. Building the value directly skips a JSON round trip on every
// decision; TestInputValueMatchesJSON keeps the two in step, so the JSON
// tags stay the only names Rego sees. Keys, the two provision types and
// empty lists are shared terms: a decision allocates only for what the
// request itself brings.
func (in Input) value() ast.Value {
	b := valueBuilder{strs: make(map[string]*ast.Term, 16)}
	return b.input(in)
}

// valueBuilder builds one input value. The same string (a country, a
// purpose, a resource type) recurs across provisions: it becomes one term.
type valueBuilder struct {
	strs map[string]*ast.Term
}

func (b *valueBuilder) input(in Input) ast.Value {
	items := make([][2]*ast.Term, 0, 8)
	items = append(items,
		[2]*ast.Term{keyPhase, b.stringTerm(in.Phase)},
		[2]*ast.Term{keyRequester, ast.NewTerm(b.requesterValue(in.Requester))},
		[2]*ast.Term{keyAction, ast.NewTerm(b.actionValue(in.Action))},
	)
	if in.Source != nil {
		items = append(items, [2]*ast.Term{keySource, ast.NewTerm(ast.NewObject(
			[2]*ast.Term{keyID, b.stringTerm(in.Source.ID)},
			[2]*ast.Term{keyCountry, b.stringTerm(in.Source.Country)},
		))})
	}
	if in.Resource != nil {
		r := in.Resource
		items = append(items, [2]*ast.Term{keyResource, ast.NewTerm(ast.NewObject(
			[2]*ast.Term{keyType, b.stringTerm(r.Type)},
			[2]*ast.Term{keySecurity, arrayTerm(r.Security, func(c Coding) *ast.Term { return ast.NewTerm(b.codingValue(c)) })},
			[2]*ast.Term{keyCategory, b.stringsTerm(r.Category)},
			[2]*ast.Term{keyClass, b.stringTerm(r.Class)},
		))})
	}
	items = append(items, [2]*ast.Term{keyConsent, arrayTerm(in.Consent, func(p Provision) *ast.Term { return ast.NewTerm(b.provisionValue(p)) })})
	if in.Match != nil {
		items = append(items, [2]*ast.Term{keyMatch, ast.NewTerm(ast.NewObject([2]*ast.Term{keyTraits, b.stringsTerm(in.Match.Traits)}))})
	}
	if st := in.Statistics; st != nil {
		strata := arrayTerm(st.Strata, func(s Stratum) *ast.Term {
			return ast.NewTerm(ast.NewObject([2]*ast.Term{keyCode, b.stringTerm(s.Code)}, [2]*ast.Term{keyClass, b.stringTerm(s.Class)}))
		})
		items = append(items, [2]*ast.Term{keyStatistics, ast.NewTerm(ast.NewObject(
			[2]*ast.Term{keyMeasure, b.stringTerm(st.Measure)},
			[2]*ast.Term{keyProtected, ast.InternedTerm(st.Protected)},
			[2]*ast.Term{keyStrata, strata},
			[2]*ast.Term{keyPeriodMonths, ast.InternedTerm(st.PeriodMonths)},
		))})
	}
	return ast.NewObject(items...)
}

// Keys of the input objects, built once: an evaluation never changes a
// term, so every decision shares them.
var (
	keyPhase          = ast.StringTerm("phase")
	keyRequester      = ast.StringTerm("requester")
	keyAction         = ast.StringTerm("action")
	keySource         = ast.StringTerm("source")
	keyResource       = ast.StringTerm("resource")
	keyConsent        = ast.StringTerm("consent")
	keyMatch          = ast.StringTerm("match")
	keyStatistics     = ast.StringTerm("statistics")
	keyID             = ast.StringTerm("id")
	keyCountry        = ast.StringTerm("country")
	keyType           = ast.StringTerm("type")
	keySecurity       = ast.StringTerm("security")
	keyCategory       = ast.StringTerm("category")
	keyClass          = ast.StringTerm("class")
	keyTraits         = ast.StringTerm("traits")
	keyCode           = ast.StringTerm("code")
	keySystem         = ast.StringTerm("system")
	keyMeasure        = ast.StringTerm("measure")
	keyProtected      = ast.StringTerm("protected")
	keyStrata         = ast.StringTerm("strata")
	keyPeriodMonths   = ast.StringTerm("period_months")
	keyClientID       = ast.StringTerm("client_id")
	keyOrg            = ast.StringTerm("org")
	keyRole           = ast.StringTerm("role")
	keyPurposeOfUse   = ast.StringTerm("purpose_of_use")
	keyScopes         = ast.StringTerm("scopes")
	keyBreakGlass     = ast.StringTerm("break_glass")
	keyInteraction    = ast.StringTerm("interaction")
	keyResourceType   = ast.StringTerm("resource_type")
	keyOperation      = ast.StringTerm("operation")
	keyConsentID      = ast.StringTerm("consent_id")
	keyLevel          = ast.StringTerm("level")
	keyStart          = ast.StringTerm("start")
	keyEnd            = ast.StringTerm("end")
	keyStartNS        = ast.StringTerm("start_ns")
	keyEndNS          = ast.StringTerm("end_ns")
	keyActorCountries = ast.StringTerm("actor_countries")
	keyActorOrgs      = ast.StringTerm("actor_orgs")
	keyPurposes       = ast.StringTerm("purposes")
	keyClasses        = ast.StringTerm("classes")
	keySecurityLabels = ast.StringTerm("security_labels")

	// The two provision types.
	termPermit = ast.StringTerm("permit")
	termDeny   = ast.StringTerm("deny")
)

// stringTerm is s as a term, shared where OPA interns it (the empty
// string and common words) or where it occurred before in this input.
func (b *valueBuilder) stringTerm(s string) *ast.Term {
	if t, ok := b.strs[s]; ok {
		return t
	}
	t := ast.InternedTerm(s)
	b.strs[s] = t
	return t
}

func (b *valueBuilder) requesterValue(r auth.Requester) ast.Value {
	return ast.NewObject(
		[2]*ast.Term{keyClientID, b.stringTerm(r.ClientID)},
		[2]*ast.Term{keyOrg, b.stringTerm(r.Org)},
		[2]*ast.Term{keyCountry, b.stringTerm(r.Country)},
		[2]*ast.Term{keyRole, b.stringTerm(r.Role)},
		[2]*ast.Term{keyPurposeOfUse, b.stringTerm(r.PurposeOfUse)},
		[2]*ast.Term{keyScopes, b.stringsTerm(r.Scopes)},
		[2]*ast.Term{keyBreakGlass, ast.InternedTerm(r.BreakGlass)},
	)
}

func (b *valueBuilder) actionValue(a Action) ast.Value {
	if a.Operation != "" {
		return ast.NewObject(
			[2]*ast.Term{keyInteraction, b.stringTerm(a.Interaction)},
			[2]*ast.Term{keyResourceType, b.stringTerm(a.ResourceType)},
			[2]*ast.Term{keyOperation, b.stringTerm(a.Operation)},
		)
	}
	return ast.NewObject(
		[2]*ast.Term{keyInteraction, b.stringTerm(a.Interaction)},
		[2]*ast.Term{keyResourceType, b.stringTerm(a.ResourceType)},
	)
}

func (b *valueBuilder) codingValue(c Coding) ast.Value {
	return ast.NewObject([2]*ast.Term{keySystem, b.stringTerm(c.System)}, [2]*ast.Term{keyCode, b.stringTerm(c.Code)})
}

func (b *valueBuilder) provisionValue(p Provision) ast.Value {
	var items [12][2]*ast.Term
	typ := termPermit
	if p.Type != "permit" {
		typ = termDeny
		if p.Type != "deny" {
			typ = b.stringTerm(p.Type)
		}
	}
	items[0] = [2]*ast.Term{keyConsentID, b.stringTerm(p.ConsentID)}
	items[1] = [2]*ast.Term{keyType, typ}
	items[2] = [2]*ast.Term{keyLevel, ast.InternedTerm(p.Level)}
	items[3] = [2]*ast.Term{keyActorCountries, b.stringsTerm(p.ActorCountries)}
	items[4] = [2]*ast.Term{keyActorOrgs, b.stringsTerm(p.ActorOrgs)}
	items[5] = [2]*ast.Term{keyPurposes, b.stringsTerm(p.Purposes)}
	items[6] = [2]*ast.Term{keyClasses, b.stringsTerm(p.Classes)}
	items[7] = [2]*ast.Term{keySecurityLabels, b.stringsTerm(p.SecurityLabels)}
	n := 8
	if p.Start != "" {
		items[n] = [2]*ast.Term{keyStart, b.stringTerm(p.Start)}
		n++
	}
	if p.End != "" {
		items[n] = [2]*ast.Term{keyEnd, b.stringTerm(p.End)}
		n++
	}
	if p.StartNS != nil {
		items[n] = [2]*ast.Term{keyStartNS, ast.InternedTerm(*p.StartNS)}
		n++
	}
	if p.EndNS != nil {
		items[n] = [2]*ast.Term{keyEndNS, ast.InternedTerm(*p.EndNS)}
		n++
	}
	return ast.NewObject(items[:n]...)
}

// stringsTerm is list as an array term: the shared empty array when list
// is empty.
func (b *valueBuilder) stringsTerm(list []string) *ast.Term {
	return arrayTerm(list, b.stringTerm)
}

// arrayTerm is the array of each element's term; the shared empty array
// when there is none.
func arrayTerm[T any](list []T, term func(T) *ast.Term) *ast.Term {
	if len(list) == 0 {
		return ast.InternedEmptyArray
	}
	terms := make([]*ast.Term, len(list))
	for i, x := range list {
		terms[i] = term(x)
	}
	return ast.NewTerm(ast.NewArray(terms...))
}
