package audit

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/migrant-health/mhg/conformance"
	"github.com/migrant-health/mhg/conformance/r4"
)

// Code systems of the AuditEvent, as the IHE Basic Audit Log Patterns (BALP)
// use them.
const (
	SystemEventType     = "http://terminology.hl7.org/CodeSystem/audit-event-type"
	SystemInteraction   = "http://hl7.org/fhir/restful-interaction"
	SystemActReason     = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
	SystemDICOM         = "http://dicom.nema.org/resources/ontology/DCM"
	SystemEntityType    = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
	SystemObjectRole    = "http://terminology.hl7.org/CodeSystem/object-role"
	SystemSourceType    = "http://terminology.hl7.org/CodeSystem/security-source-type"
	SystemResourceTypes = "http://hl7.org/fhir/resource-types"
	SystemBALPEntity    = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"
)

// MHP identifier systems, code systems and extensions of the AuditEvent.
const (
	// SIDClient identifies the requesting client (the token's sub).
	SIDClient = conformance.Canonical + "/sid/client-id"
	// SIDOrganization identifies the requesting organisation (org claim).
	SIDOrganization = conformance.Canonical + "/sid/organization"
	// SIDSource identifies a national source by its configured id.
	SIDSource = conformance.Canonical + "/sid/source"
	// SIDDecision identifies a policy decision (the decision log's id).
	SIDDecision = conformance.Canonical + "/sid/policy-decision"
	// SIDTrace identifies a W3C trace (32 lower-case hex digits).
	SIDTrace = conformance.Canonical + "/sid/trace-id"
	// SIDGateway identifies a gateway instance.
	SIDGateway = conformance.Canonical + "/sid/gateway"
	// CSRole holds the requester role codes (clinician, auditor, ...).
	CSRole = conformance.Canonical + "/CodeSystem/mhp-requester-role"
	// ExtAgentOrganization and ExtAgentCountry carry the requester's
	// organisation (valueIdentifier) and ISO 3166-1 alpha-2 country
	// (valueCode) on the requesting agent.
	ExtAgentOrganization = conformance.Canonical + "/StructureDefinition/mhp-audit-agent-organization"
	ExtAgentCountry      = conformance.Canonical + "/StructureDefinition/mhp-audit-agent-country"
)

// Entity detail types. The trace id is in the BALP "transaction" entity
// (type XrequestId): its what.identifier (system SIDTrace) and its
// "trace-id" detail hold the 32-hex W3C trace id of the request, which is
// also the trace id in the response's traceparent and X-Request-Id.
const (
	DetailTraceID        = "trace-id"
	DetailSpanID         = "span-id"
	DetailDecisionID     = "decision-id"
	DetailPhase          = "phase"
	DetailSource         = "source"
	DetailAllow          = "allow"
	DetailRuleIDs        = "rule-ids"
	DetailPolicyRevision = "policy-revision"
	DetailBreakGlass     = "break-glass"
	DetailAgreements     = "agreements"
	DetailDataClass      = "data-class"
	DetailInteraction    = "interaction"
	DetailOperation      = "operation"
	DetailHTTPStatus     = "http-status"
	// DetailReleasedPrefix prefixes the per-type count of released
	// resources: "released:Observation" = "3".
	DetailReleasedPrefix = "released:"
	// DetailMatchTraits lists the kinds of trait a Patient/$match was made
	// with ("birthDate,family,given"), never their values.
	DetailMatchTraits = "match-traits"
	// DetailMatchGrade is the match grade of a candidate patient.
	DetailMatchGrade = "match-grade"
	// DetailMeasure, DetailPeriod ("start/end"), DetailStrata
	// ("sex,age-band-who") and DetailIncomplete describe a statistics
	// evaluation.
	DetailMeasure    = "measure"
	DetailPeriod     = "period"
	DetailStrata     = "strata"
	DetailIncomplete = "incomplete"
)

// EntityReviewed names the entity of a review record that points at the
// AuditEvent reviewed (its description holds the auditor's note).
const EntityReviewed = "reviewed audit event"

// Observer names the gateway instance that records, as AuditEvent.source
// and the gateway agent show it.
type Observer struct {
	// Site is the deployment the gateway belongs to (source.site). Empty
	// omits it.
	Site string
	// Instance identifies this gateway replica. Empty means "mhg".
	Instance string
}

// Render builds the FHIR R4 AuditEvent of e, with the given resource id and
// recorded time, as compact JSON. The event is written directly from Go
// structs that follow the R4 AuditEvent (a request's most frequent
// rendering, so it does not go through the reflective R4 marshaller); the
// tests parse every shape it produces with the R4 codec. It fails only on
// an entry whose values cannot be represented (an interaction code with
// spaces, for example).
func Render(e Entry, id string, recorded time.Time, obs Observer) ([]byte, error) {
	b, _, err := render(e, id, recorded, obs)
	return b, err
}

// render is Render, with the event's index entry (what keysOf would read
// back from the JSON).
func render(e Entry, id string, recorded time.Time, obs Observer) ([]byte, indexEntry, error) {
	ev, err := build(e, id, recorded, obs)
	if err != nil {
		return nil, indexEntry{}, err
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, indexEntry{}, fmt.Errorf("audit: render AuditEvent: %w", err)
	}
	k, ok := ev.keys()
	if !ok {
		return b, keysOf(b), nil
	}
	return b, indexEntryOf(k), nil
}

// The R4 AuditEvent, as far as the gateway fills it in.
type (
	event struct {
		ResourceType   string    `json:"resourceType"`
		ID             string    `json:"id"`
		Type           coding    `json:"type"`
		Subtype        []coding  `json:"subtype"`
		Action         string    `json:"action"`
		Period         *period   `json:"period,omitempty"`
		Recorded       string    `json:"recorded"`
		Outcome        string    `json:"outcome"`
		OutcomeDesc    string    `json:"outcomeDesc,omitempty"`
		PurposeOfEvent []concept `json:"purposeOfEvent,omitempty"`
		Agent          []agent   `json:"agent"`
		Source         source    `json:"source"`
		Entity         []entity  `json:"entity,omitempty"`
	}
	coding struct {
		System  string `json:"system,omitempty"`
		Code    string `json:"code,omitempty"`
		Display string `json:"display,omitempty"`
	}
	concept struct {
		Coding []coding `json:"coding"`
	}
	identifier struct {
		System string `json:"system,omitempty"`
		Value  string `json:"value,omitempty"`
	}
	reference struct {
		Reference  string      `json:"reference,omitempty"`
		Identifier *identifier `json:"identifier,omitempty"`
		Display    string      `json:"display,omitempty"`
	}
	period struct {
		Start string `json:"start,omitempty"`
		End   string `json:"end,omitempty"`
	}
	extension struct {
		URL             string      `json:"url"`
		ValueIdentifier *identifier `json:"valueIdentifier,omitempty"`
		ValueCode       string      `json:"valueCode,omitempty"`
	}
	agent struct {
		Extension    []extension `json:"extension,omitempty"`
		Type         *concept    `json:"type,omitempty"`
		Role         []concept   `json:"role,omitempty"`
		Who          *reference  `json:"who,omitempty"`
		Requestor    bool        `json:"requestor"`
		PurposeOfUse []concept   `json:"purposeOfUse,omitempty"`
	}
	source struct {
		Site     string    `json:"site,omitempty"`
		Observer reference `json:"observer"`
		Type     []coding  `json:"type,omitempty"`
	}
	entity struct {
		What        *reference `json:"what,omitempty"`
		Type        *coding    `json:"type,omitempty"`
		Role        *coding    `json:"role,omitempty"`
		Name        string     `json:"name,omitempty"`
		Description string     `json:"description,omitempty"`
		Detail      []detail   `json:"detail,omitempty"`
	}
	detail struct {
		Type        string `json:"type"`
		ValueString string `json:"valueString"`
	}
)

func build(e Entry, id string, recorded time.Time, obs Observer) (*event, error) {
	if obs.Instance == "" {
		obs.Instance = "mhg"
	}
	interaction := e.Interaction
	if interaction == "" {
		interaction = "read"
	}
	if !r4.IsID(id) {
		return nil, fmt.Errorf("audit: %q is not a FHIR id", id)
	}
	for _, c := range []struct{ name, v string }{
		{"interaction", interaction}, {"resource type", e.ResourceType}, {"purpose of use", e.Requester.PurposeOfUse},
		{"role", e.Requester.Role}, {"country", e.Requester.Country},
	} {
		if c.v != "" && !isCode(c.v) {
			return nil, fmt.Errorf("audit: %s %q is not a FHIR code", c.name, c.v)
		}
	}

	ev := &event{
		ResourceType: "AuditEvent",
		ID:           id,
		Type:         coding{SystemEventType, "rest", "Restful Operation"},
		Subtype:      []coding{{SystemInteraction, interaction, interaction}},
		Action:       action(interaction),
		Recorded:     instant(recorded),
		Outcome:      outcomeCode(e.Outcome),
		OutcomeDesc:  outcomeDesc(e),
		Source: source{
			Site: obs.Site,
			Observer: reference{
				Identifier: &identifier{SIDGateway, obs.Instance},
				Display:    "Migrant Health Gateway",
			},
			Type: []coding{{SystemSourceType, "4", "Application Server"}},
		},
	}
	if !e.Time.IsZero() {
		ev.Period = &period{Start: instant(e.Time), End: instant(recorded)}
	}
	if p := e.Requester.PurposeOfUse; p != "" {
		ev.PurposeOfEvent = append(ev.PurposeOfEvent, concept{[]coding{{System: SystemActReason, Code: p}}})
	}
	if e.BreakGlass {
		ev.PurposeOfEvent = append(ev.PurposeOfEvent, concept{[]coding{{SystemActReason, "BTG", "break the glass"}}})
	}
	ev.Agent = []agent{requestor(e, ev.PurposeOfEvent), gateway(obs)}

	if e.Patient != "" {
		ent, err := patientEntity(e.Patient)
		if err != nil {
			return nil, err
		}
		ev.Entity = append(ev.Entity, ent)
	}
	for _, c := range e.Candidates {
		ent, err := patientEntity(c.Patient)
		if err != nil {
			return nil, err
		}
		if c.Grade != "" {
			if !isCode(c.Grade) {
				return nil, fmt.Errorf("audit: match grade %q is not a FHIR code", c.Grade)
			}
			ent.Detail = []detail{{DetailMatchGrade, c.Grade}}
		}
		ev.Entity = append(ev.Entity, ent)
	}
	ev.Entity = append(ev.Entity, requestEntity(e, interaction))
	for _, s := range e.Sources {
		ev.Entity = append(ev.Entity, sourceEntity(s))
	}
	for _, d := range e.Decisions {
		ev.Entity = append(ev.Entity, decisionEntity(d, e.BreakGlass))
	}
	if e.TraceID != "" {
		ev.Entity = append(ev.Entity, traceEntity(e.TraceID, e.SpanID))
	}
	if e.Review != nil {
		if !r4.IsID(e.Review.EventID) {
			return nil, fmt.Errorf("audit: reviewed event id is not a FHIR id")
		}
		ev.Entity = append(ev.Entity, entity{
			What:        &reference{Reference: "AuditEvent/" + e.Review.EventID},
			Type:        &coding{SystemResourceTypes, "AuditEvent", "AuditEvent"},
			Role:        &coding{SystemObjectRole, "3", "Report"},
			Name:        EntityReviewed,
			Description: e.Review.Note,
		})
	}
	return ev, nil
}

func requestor(e Entry, purposes []concept) agent {
	r := e.Requester
	a := agent{
		Type:         &concept{[]coding{{SystemDICOM, "110153", "Source Role ID"}}},
		Requestor:    true,
		PurposeOfUse: purposes,
	}
	who := &reference{}
	if r.ClientID != "" {
		who.Identifier = &identifier{SIDClient, r.ClientID}
	}
	switch {
	case r.Org != "":
		who.Display = r.Org
	case r.ClientID == "":
		who.Display = "unidentified client"
	}
	a.Who = who
	if r.Role != "" {
		a.Role = []concept{{[]coding{{System: CSRole, Code: r.Role}}}}
	}
	if r.Org != "" {
		a.Extension = append(a.Extension, extension{URL: ExtAgentOrganization, ValueIdentifier: &identifier{SIDOrganization, r.Org}})
	}
	if r.Country != "" {
		a.Extension = append(a.Extension, extension{URL: ExtAgentCountry, ValueCode: r.Country})
	}
	return a
}

func gateway(obs Observer) agent {
	return agent{
		Type: &concept{[]coding{{SystemDICOM, "110152", "Destination Role ID"}}},
		Who: &reference{
			Identifier: &identifier{SIDGateway, obs.Instance},
			Display:    "Migrant Health Gateway",
		},
	}
}

func patientEntity(ref string) (entity, error) {
	id := strings.TrimPrefix(ref, "Patient/")
	if id == "" || !r4.IsID(id) {
		return entity{}, fmt.Errorf("audit: patient reference is not Patient/<id>")
	}
	return entity{
		What: &reference{Reference: "Patient/" + id},
		Type: &coding{SystemEntityType, "1", "Person"},
		Role: &coding{SystemObjectRole, "1", "Patient"},
	}, nil
}

func requestEntity(e Entry, interaction string) entity {
	ent := entity{Role: &coding{SystemObjectRole, "4", "Domain Resource"}}
	if e.ResourceType != "" {
		ent.Type = &coding{SystemResourceTypes, e.ResourceType, e.ResourceType}
	} else {
		ent.Type = &coding{SystemEntityType, "2", "System Object"}
	}
	if typ, id, ok := strings.Cut(e.Resource, "/"); ok && typ == e.ResourceType && r4.IsID(id) {
		ent.What = &reference{Reference: e.Resource}
	}
	ent.Detail = append(ent.Detail, detail{DetailInteraction, interaction})
	if e.Operation != "" {
		ent.Detail = append(ent.Detail, detail{DetailOperation, e.Operation})
	}
	if e.Status != 0 {
		ent.Detail = append(ent.Detail, detail{DetailHTTPStatus, strconv.Itoa(e.Status)})
	}
	if len(e.MatchTraits) > 0 {
		ent.Detail = append(ent.Detail, detail{DetailMatchTraits, strings.Join(e.MatchTraits, ",")})
	}
	if st := e.Statistics; st != nil {
		ent.Detail = append(ent.Detail, detail{DetailMeasure, st.Measure})
		if st.PeriodStart != "" {
			ent.Detail = append(ent.Detail, detail{DetailPeriod, st.PeriodStart + "/" + st.PeriodEnd})
		}
		if len(st.Strata) > 0 {
			ent.Detail = append(ent.Detail, detail{DetailStrata, strings.Join(st.Strata, ",")})
		}
		ent.Detail = append(ent.Detail, detail{DetailIncomplete, strconv.FormatBool(st.Incomplete)})
	}
	types := make([]string, 0, len(e.Released))
	for t := range e.Released {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		ent.Detail = append(ent.Detail, detail{DetailReleasedPrefix + t, strconv.Itoa(e.Released[t])})
	}
	ent.Detail = append(ent.Detail, detail{DetailBreakGlass, strconv.FormatBool(e.BreakGlass)})
	return ent
}

func sourceEntity(id string) entity {
	return entity{
		What: &reference{Identifier: &identifier{SIDSource, id}},
		Type: &coding{SystemEntityType, "2", "System Object"},
		Role: &coding{SystemObjectRole, "17", "Data Repository"},
	}
}

func decisionEntity(d Decision, breakGlass bool) entity {
	ent := entity{
		Type: &coding{SystemEntityType, "2", "System Object"},
		Role: &coding{SystemObjectRole, "13", "Security Resource"},
		Name: "policy decision",
	}
	if d.ID != "" {
		ent.What = &reference{Identifier: &identifier{SIDDecision, d.ID}}
		ent.Detail = append(ent.Detail, detail{DetailDecisionID, d.ID})
	}
	if d.Phase != "" {
		ent.Detail = append(ent.Detail, detail{DetailPhase, d.Phase})
	}
	if d.Source != "" {
		ent.Detail = append(ent.Detail, detail{DetailSource, d.Source})
	}
	ent.Detail = append(ent.Detail, detail{DetailAllow, strconv.FormatBool(d.Allow)})
	if len(d.Reasons) > 0 {
		ent.Detail = append(ent.Detail, detail{DetailRuleIDs, strings.Join(d.Reasons, " ")})
	}
	if d.Revision != "" {
		ent.Detail = append(ent.Detail, detail{DetailPolicyRevision, d.Revision})
	}
	if len(d.Agreements) > 0 {
		ent.Detail = append(ent.Detail, detail{DetailAgreements, strings.Join(d.Agreements, " ")})
	}
	if d.Class != "" {
		ent.Detail = append(ent.Detail, detail{DetailDataClass, d.Class})
	}
	ent.Detail = append(ent.Detail, detail{DetailBreakGlass, strconv.FormatBool(breakGlass)})
	return ent
}

func traceEntity(traceID, spanID string) entity {
	ent := entity{
		What: &reference{Identifier: &identifier{SIDTrace, traceID}},
		Type: &coding{SystemBALPEntity, "XrequestId", "X-Request-Id"},
		Name: "trace",
	}
	ent.Detail = append(ent.Detail, detail{DetailTraceID, traceID})
	if spanID != "" {
		ent.Detail = append(ent.Detail, detail{DetailSpanID, spanID})
	}
	return ent
}

// action maps a FHIR interaction to the AuditEvent action, as BALP does:
// reads are R, searches and operations E (execute).
func action(interaction string) string {
	switch interaction {
	case "read", "vread", "history-instance", "history-type", "history-system", "capabilities":
		return "R"
	case "create":
		return "C"
	case "update", "patch":
		return "U"
	case "delete":
		return "D"
	default:
		return "E"
	}
}

// outcomeCode maps the entry outcome: success 0, denied 4 (minor failure:
// the request was refused as policy says), failed 8 (serious failure).
func outcomeCode(o string) string {
	switch o {
	case OutcomeSuccess:
		return "0"
	case OutcomeDenied:
		return "4"
	default:
		return "8"
	}
}

// outcomeDesc says why a request did not succeed, from rule ids and the
// status only, so the description holds no patient data.
func outcomeDesc(e Entry) string {
	switch e.Outcome {
	case OutcomeSuccess:
		return ""
	case OutcomeDenied:
		var rules []string
		for _, d := range e.Decisions {
			if !d.Allow {
				rules = append(rules, d.Reasons...)
			}
		}
		if len(rules) == 0 {
			return "denied"
		}
		return "denied by policy: " + strings.Join(rules, " ")
	default:
		if e.Status != 0 {
			return "failed with HTTP status " + strconv.Itoa(e.Status)
		}
		return "failed"
	}
}

// instant renders a time as an R4 instant, in UTC with microseconds.
func instant(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000Z")
}

// isCode reports whether s matches the FHIR code pattern [^\s]+( [^\s]+)*.
func isCode(s string) bool {
	if s == "" || s[0] == ' ' || s[len(s)-1] == ' ' || strings.Contains(s, "  ") {
		return false
	}
	return !strings.ContainsAny(s, "\t\n\r")
}
