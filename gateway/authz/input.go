package authz

import "github.com/migrant-health/mhg/gateway/auth"

// Phases of a decision.
const (
	// PhaseQuery decides whether a source may be contacted at all.
	PhaseQuery = "query"
	// PhaseRelease decides whether a resource, and which of its elements,
	// may go to the requester.
	PhaseRelease = "release"
)

// Input is the whole policy input. Its JSON form is what Rego sees as
// `input`; the field tags are the Rego paths. By construction it holds no
// protected attribute (sex, birth date, religion, nationality, country of
// birth, race, ethnicity, language, arrival): policies cannot use what they
// are not given.
type Input struct {
	// Phase is PhaseQuery or PhaseRelease.
	Phase string `json:"phase"`
	// Requester is who asks, from the verified token.
	Requester auth.Requester `json:"requester"`
	// Action is what is asked.
	Action Action `json:"action"`
	// Source is the national source concerned; nil for requests that touch
	// no source (metadata, audit search).
	Source *Source `json:"source,omitempty"`
	// Resource describes the resource to release; only in PhaseRelease.
	Resource *Resource `json:"resource,omitempty"`
	// Consent holds the patient's consent provisions from the source,
	// normalised; empty when the source holds none.
	Consent []Provision `json:"consent"`
	// Match describes a demographic search (Patient/$match); nil for every
	// other request.
	Match *Match `json:"match,omitempty"`
	// Statistics describes a request for aggregate statistics
	// (Measure/{id}/$evaluate-measure); nil for every other request.
	Statistics *Statistics `json:"statistics,omitempty"`
}

// Statistics is what policies see of a statistics request: which measure,
// which strata (the catalogue codes and their data classes, never a
// person's category) and how long a period.
type Statistics struct {
	// Measure is the Measure id (mhp-tb-active, ...).
	Measure string `json:"measure"`
	// Protected says the measure is about a protected class (its Measure
	// carries a sensitivity label such as HIV): the stricter k applies.
	Protected bool `json:"protected"`
	// Strata are the strata asked for, in request order.
	Strata []Stratum `json:"strata"`
	// PeriodMonths is the number of calendar months the requested period
	// covers once snapped to whole months.
	PeriodMonths int `json:"period_months"`
}

// Stratum is one stratum of a statistics request.
type Stratum struct {
	// Code is the catalogue code (sex, age-band-5, migration-status, ...).
	Code string `json:"code"`
	// Class is the stratum's data class: P protected attribute (an
	// aggregate dimension only), S firewalled (migration context), C
	// context (reporting country).
	Class string `json:"class"`
}

// Match is what policies see of a demographic search: which kinds of
// trait the requester gave (TraitKinds), never their values.
type Match struct {
	// Traits are trait kinds, sorted: family, given, birthDate, ...
	Traits []string `json:"traits"`
}

// Action is the interaction asked for.
type Action struct {
	// Interaction is a FHIR interaction: read, search-type, operation, ...
	Interaction string `json:"interaction"`
	// ResourceType is the FHIR type asked for.
	ResourceType string `json:"resource_type"`
	// Operation is the operation name without "$", for operations.
	Operation string `json:"operation,omitempty"`
}

// Source is a national source as policies see it.
type Source struct {
	// ID is the configured source id.
	ID string `json:"id"`
	// Country is its ISO 3166-1 alpha-2 country.
	Country string `json:"country"`
}

// Resource holds the facts about one resource that policies may use.
type Resource struct {
	// Type is the FHIR resource type.
	Type string `json:"type"`
	// Security are the meta.security labels.
	Security []Coding `json:"security"`
	// Category are category codes (Observation.category, Condition.category,
	// ...) as "system|code".
	Category []string `json:"category"`
	// Class is the MHP data class: "C" clinical or "S" sensitive/firewalled.
	Class string `json:"class"`
}

// Coding is a code from a code system.
type Coding struct {
	// System is the code system URL.
	System string `json:"system"`
	// Code is the code in that system.
	Code string `json:"code"`
}

// Provision is one normalised Consent provision.
type Provision struct {
	// ConsentID names the Consent it came from (gateway id), for reasons.
	// Decision logs erase it.
	ConsentID string `json:"consent_id"`
	// Type is "permit" or "deny".
	Type string `json:"type"`
	// Level is the nesting depth of the provision in its Consent: 0 for
	// Consent.provision, 1 for the provisions nested in it, and so on. The
	// deepest provision that applies to a request decides (a nested
	// provision is an exception to its parent); at equal depth deny wins.
	Level int `json:"level"`
	// Period bounds the provision; RFC 3339 or FHIR dates, empty = open.
	Start string `json:"start,omitempty"`
	End   string `json:"end,omitempty"`
	// StartNS and EndNS are the period read as nanoseconds since 1970
	// (UTC), filled in by the engine from Start and End before every
	// decision (whatever the caller set is replaced): StartNS is the first
	// instant of Start, EndNS the first instant after End, so a partial end
	// date includes its whole year, month or day. Each is absent when its
	// bound is absent or cannot be read: policies tell "open" from
	// "unreadable" by Start and End.
	StartNS *int64 `json:"start_ns,omitempty"`
	EndNS   *int64 `json:"end_ns,omitempty"`
	// ActorCountries and ActorOrgs restrict who it applies to; empty = all.
	ActorCountries []string `json:"actor_countries"`
	ActorOrgs      []string `json:"actor_orgs"`
	// Purposes are PurposeOfUse codes; empty = all.
	Purposes []string `json:"purposes"`
	// Classes are resource types (consent-content-class); empty = all.
	Classes []string `json:"classes"`
	// SecurityLabels are label codes the provision is about; empty = all.
	SecurityLabels []string `json:"security_labels"`
}

// Decision is what the policy decided.
type Decision struct {
	// Allow is the verdict; false whenever anything went wrong.
	Allow bool `json:"allow"`
	// Reasons are stable rule ids, readable by a lawyer.
	Reasons []string `json:"reasons"`
	// Obligations must be carried out before anything is released.
	Obligations []Obligation `json:"obligations"`
	// Revision is the policy revision that decided.
	Revision string `json:"revision"`
	// ID is the decision id, as in the decision log.
	ID string `json:"decision_id"`
	// Agreements are the ids of the data-sharing agreements the release
	// relies on (cross-border decisions that allow); empty otherwise.
	Agreements []string `json:"agreements"`
}

// Obligation kinds.
const (
	// ObligationRedact removes the element paths in Paths.
	ObligationRedact = "redact"
	// ObligationLabel adds the security labels in Labels.
	ObligationLabel = "label"
	// ObligationNotify asks that someone be told (break-the-glass).
	ObligationNotify = "notify"
	// ObligationMatch bounds a demographic search of one source (query
	// phase): only Traits may be sent to it, and no candidate below Grade
	// may be released.
	ObligationMatch = "match"
	// ObligationStatistics carries the disclosure terms of a statistics
	// release from one source (query phase): the smallest count published
	// (K), the rounding base and the coarsest period grain.
	ObligationStatistics = "statistics"
)

// Obligation is something that must be done to release data.
type Obligation struct {
	// Kind is ObligationRedact, ObligationLabel or ObligationNotify.
	Kind string `json:"kind"`
	// Paths are FHIR element paths such as "Patient.address" (redact).
	Paths []string `json:"paths,omitempty"`
	// Labels are security labels to add (label).
	Labels []Coding `json:"labels,omitempty"`
	// Target says who is notified (notify).
	Target string `json:"target,omitempty"`
	// Traits are the trait kinds that may be sent to the source (match).
	Traits []string `json:"traits,omitempty"`
	// Grade is the lowest match grade that may be released (match).
	Grade string `json:"grade,omitempty"`
	// Required are the trait kinds the source requires (match).
	Required []string `json:"required,omitempty"`
	// K is the smallest count that may be published (statistics): 1..K-1
	// are masked.
	K int `json:"k,omitempty"`
	// Rounding, above 1, rounds published counts to a multiple of it
	// (statistics).
	Rounding int `json:"rounding,omitempty"`
	// Grain is the shortest period a statistic may cover: month, quarter
	// or year (statistics).
	Grain string `json:"grain,omitempty"`
	// Rule is the rule id that imposed the obligation.
	Rule string `json:"rule"`
}
