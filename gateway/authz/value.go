package authz

import (
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
		for i, p := range in.Consent {
			p.ActorCountries = nonNil(p.ActorCountries)
			p.ActorOrgs = nonNil(p.ActorOrgs)
			p.Purposes = nonNil(p.Purposes)
			p.Classes = nonNil(p.Classes)
			p.SecurityLabels = nonNil(p.SecurityLabels)
			consent[i] = p
		}
		in.Consent = consent
	}
	return in
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
// tags stay the only names Rego sees.
func (in Input) value() ast.Value {
	items := make([][2]*ast.Term, 0, 6)
	items = append(items,
		item("phase", ast.String(in.Phase)),
		item("requester", requesterValue(in.Requester)),
		item("action", actionValue(in.Action)),
	)
	if in.Source != nil {
		items = append(items, item("source", ast.NewObject(
			item("id", ast.String(in.Source.ID)),
			item("country", ast.String(in.Source.Country)),
		)))
	}
	if in.Resource != nil {
		r := in.Resource
		security := make([]*ast.Term, len(r.Security))
		for i, c := range r.Security {
			security[i] = ast.NewTerm(codingValue(c))
		}
		items = append(items, item("resource", ast.NewObject(
			item("type", ast.String(r.Type)),
			item("security", ast.NewArray(security...)),
			item("category", stringsValue(r.Category)),
			item("class", ast.String(r.Class)),
		)))
	}
	consent := make([]*ast.Term, len(in.Consent))
	for i, p := range in.Consent {
		consent[i] = ast.NewTerm(provisionValue(p))
	}
	items = append(items, item("consent", ast.NewArray(consent...)))
	if in.Match != nil {
		items = append(items, item("match", ast.NewObject(item("traits", stringsValue(in.Match.Traits)))))
	}
	if st := in.Statistics; st != nil {
		strata := make([]*ast.Term, len(st.Strata))
		for i, s := range st.Strata {
			strata[i] = ast.NewTerm(ast.NewObject(item("code", ast.String(s.Code)), item("class", ast.String(s.Class))))
		}
		items = append(items, item("statistics", ast.NewObject(
			item("measure", ast.String(st.Measure)),
			item("protected", ast.Boolean(st.Protected)),
			item("strata", ast.NewArray(strata...)),
			item("period_months", ast.InternedTerm(st.PeriodMonths).Value),
		)))
	}
	return ast.NewObject(items...)
}

func item(key string, v ast.Value) [2]*ast.Term {
	return [2]*ast.Term{ast.StringTerm(key), ast.NewTerm(v)}
}

func requesterValue(r auth.Requester) ast.Value {
	return ast.NewObject(
		item("client_id", ast.String(r.ClientID)),
		item("org", ast.String(r.Org)),
		item("country", ast.String(r.Country)),
		item("role", ast.String(r.Role)),
		item("purpose_of_use", ast.String(r.PurposeOfUse)),
		item("scopes", stringsValue(r.Scopes)),
		item("break_glass", ast.Boolean(r.BreakGlass)),
	)
}

func actionValue(a Action) ast.Value {
	items := [][2]*ast.Term{
		item("interaction", ast.String(a.Interaction)),
		item("resource_type", ast.String(a.ResourceType)),
	}
	if a.Operation != "" {
		items = append(items, item("operation", ast.String(a.Operation)))
	}
	return ast.NewObject(items...)
}

func codingValue(c Coding) ast.Value {
	return ast.NewObject(item("system", ast.String(c.System)), item("code", ast.String(c.Code)))
}

func provisionValue(p Provision) ast.Value {
	items := [][2]*ast.Term{
		item("consent_id", ast.String(p.ConsentID)),
		item("type", ast.String(p.Type)),
	}
	if p.Level != 0 {
		items = append(items, item("level", ast.InternedTerm(p.Level).Value))
	}
	if p.Start != "" {
		items = append(items, item("start", ast.String(p.Start)))
	}
	if p.End != "" {
		items = append(items, item("end", ast.String(p.End)))
	}
	items = append(items,
		item("actor_countries", stringsValue(p.ActorCountries)),
		item("actor_orgs", stringsValue(p.ActorOrgs)),
		item("purposes", stringsValue(p.Purposes)),
		item("classes", stringsValue(p.Classes)),
		item("security_labels", stringsValue(p.SecurityLabels)),
	)
	return ast.NewObject(items...)
}

func stringsValue(list []string) ast.Value {
	terms := make([]*ast.Term, len(list))
	for i, s := range list {
		terms[i] = ast.StringTerm(s)
	}
	return ast.NewArray(terms...)
}
