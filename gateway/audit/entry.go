package audit

import (
	"time"

	"github.com/migrant-health/mhg/gateway/auth"
)

// Outcomes of an audited request.
const (
	OutcomeSuccess = "success"
	OutcomeDenied  = "denied"
	OutcomeFailed  = "failed"
)

// Entry is what the gateway knows about one request that touched patient
// data; the audit package renders it as a FHIR AuditEvent.
type Entry struct {
	// Time is when the request was received.
	Time time.Time
	// TraceID and SpanID link the record to the request's trace.
	TraceID string
	SpanID  string
	// Requester is who asked.
	Requester auth.Requester
	// Interaction is the FHIR interaction (read, search-type, operation).
	Interaction string
	// ResourceType is the type asked for; Operation the operation name.
	ResourceType string
	Operation    string
	// Resource is "Type/id" (gateway id) when the request is about one
	// resource and not a Patient (the $attachment route); the request
	// entity's "what" then names it.
	Resource string
	// Patient is the gateway reference of the patient concerned
	// ("Patient/<gateway id>"), when there is one.
	Patient string
	// Sources are the ids of the sources contacted.
	Sources []string
	// Released counts the resources released, by type.
	Released map[string]int
	// Outcome is OutcomeSuccess, OutcomeDenied or OutcomeFailed, and
	// Status the HTTP status answered.
	Outcome string
	Status  int
	// Decisions are the policy decisions taken for the request.
	Decisions []Decision
	// BreakGlass is set when the requester invoked break-the-glass.
	BreakGlass bool
	// Review, when set, records an auditor's review of an earlier
	// AuditEvent (a break-the-glass access): the console's review queue
	// is the break-the-glass events no review names.
	Review *Review
	// MatchTraits are the kinds of trait a demographic search
	// (Patient/$match) was made with, never their values.
	MatchTraits []string
	// Candidates are the patients a demographic search returned, with
	// their match grades.
	Candidates []Candidate
	// Statistics describes a statistics evaluation
	// (Measure/$evaluate-measure): what was counted, never who.
	Statistics *Statistics
}

// Statistics is what the AuditEvent of a statistics evaluation names.
type Statistics struct {
	// Measure is the Measure id.
	Measure string
	// PeriodStart and PeriodEnd are the period evaluated (YYYY-MM-DD),
	// after widening to the terms' grain.
	PeriodStart, PeriodEnd string
	// Strata are the catalogue codes the table was broken down by.
	Strata []string
	// Incomplete is set when a source failed or was not permitted.
	Incomplete bool
}

// Review is an auditor's review of one AuditEvent.
type Review struct {
	// EventID is the id of the AuditEvent reviewed.
	EventID string
	// Note is what the auditor wrote.
	Note string
}

// Candidate is one patient a demographic search returned.
type Candidate struct {
	// Patient is "Patient/<gateway id>".
	Patient string
	// Grade is its match grade (certain, probable, possible).
	Grade string
}

// Decision is one policy decision as the audit record names it.
type Decision struct {
	ID       string
	Phase    string
	Source   string
	Allow    bool
	Reasons  []string
	Revision string
	// Agreements are the data-sharing agreements an allowing decision
	// relied on; Class is the data class of the resource released (C, S),
	// for release decisions.
	Agreements []string
	Class      string
}
