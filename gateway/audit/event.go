package audit

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	aepb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/audit_event_go_proto"

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
	DetailInteraction    = "interaction"
	DetailOperation      = "operation"
	DetailHTTPStatus     = "http-status"
	// DetailReleasedPrefix prefixes the per-type count of released
	// resources: "released:Observation" = "3".
	DetailReleasedPrefix = "released:"
)

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
// recorded time, as compact JSON through the R4 codec. It fails only on an
// entry whose values cannot be represented (an interaction code with spaces,
// for example).
func Render(e Entry, id string, recorded time.Time, obs Observer) ([]byte, error) {
	ev, err := build(e, id, recorded, obs)
	if err != nil {
		return nil, err
	}
	b, err := r4.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("audit: render AuditEvent: %w", err)
	}
	return b, nil
}

func build(e Entry, id string, recorded time.Time, obs Observer) (*aepb.AuditEvent, error) {
	if obs.Instance == "" {
		obs.Instance = "mhg"
	}
	interaction := e.Interaction
	if interaction == "" {
		interaction = "read"
	}
	for _, c := range []struct{ name, v string }{
		{"interaction", interaction}, {"resource type", e.ResourceType}, {"purpose of use", e.Requester.PurposeOfUse},
		{"role", e.Requester.Role}, {"country", e.Requester.Country},
	} {
		if c.v != "" && !isCode(c.v) {
			return nil, fmt.Errorf("audit: %s %q is not a FHIR code", c.name, c.v)
		}
	}

	ev := &aepb.AuditEvent{
		Id:       &dpb.Id{Value: id},
		Type:     coding(SystemEventType, "rest", "Restful Operation"),
		Subtype:  []*dpb.Coding{coding(SystemInteraction, interaction, interaction)},
		Action:   &aepb.AuditEvent_ActionCode{Value: action(interaction)},
		Recorded: instant(recorded),
		Outcome:  &aepb.AuditEvent_OutcomeCode{Value: outcomeCode(e.Outcome)},
		Source: &aepb.AuditEvent_Source{
			Observer: &dpb.Reference{
				Identifier: &dpb.Identifier{System: uri(SIDGateway), Value: str(obs.Instance)},
				Display:    str("Migrant Health Gateway"),
			},
			Type: []*dpb.Coding{coding(SystemSourceType, "4", "Application Server")},
		},
	}
	if !e.Time.IsZero() {
		ev.Period = &dpb.Period{Start: dateTime(e.Time), End: dateTime(recorded)}
	}
	if obs.Site != "" {
		ev.Source.Site = str(obs.Site)
	}
	if d := outcomeDesc(e); d != "" {
		ev.OutcomeDesc = str(d)
	}
	var purposes []*dpb.CodeableConcept
	if p := e.Requester.PurposeOfUse; p != "" {
		purposes = append(purposes, concept(SystemActReason, p, ""))
	}
	if e.BreakGlass {
		purposes = append(purposes, concept(SystemActReason, "BTG", "break the glass"))
	}
	ev.PurposeOfEvent = purposes

	ev.Agent = []*aepb.AuditEvent_Agent{requestor(e, purposes), gateway(obs)}

	if e.Patient != "" {
		ent, err := patientEntity(e.Patient)
		if err != nil {
			return nil, err
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
	return ev, nil
}

func requestor(e Entry, purposes []*dpb.CodeableConcept) *aepb.AuditEvent_Agent {
	r := e.Requester
	a := &aepb.AuditEvent_Agent{
		Type:         concept(SystemDICOM, "110153", "Source Role ID"),
		Requestor:    &dpb.Boolean{Value: true},
		PurposeOfUse: purposes,
	}
	who := &dpb.Reference{}
	if r.ClientID != "" {
		who.Identifier = &dpb.Identifier{System: uri(SIDClient), Value: str(r.ClientID)}
	}
	switch {
	case r.Org != "":
		who.Display = str(r.Org)
	case r.ClientID == "":
		who.Display = str("unidentified client")
	}
	a.Who = who
	if r.Role != "" {
		a.Role = []*dpb.CodeableConcept{concept(CSRole, r.Role, "")}
	}
	if r.Org != "" {
		a.Extension = append(a.Extension, &dpb.Extension{
			Url: uri(ExtAgentOrganization),
			Value: &dpb.Extension_ValueX{Choice: &dpb.Extension_ValueX_Identifier{
				Identifier: &dpb.Identifier{System: uri(SIDOrganization), Value: str(r.Org)},
			}},
		})
	}
	if r.Country != "" {
		a.Extension = append(a.Extension, &dpb.Extension{
			Url:   uri(ExtAgentCountry),
			Value: &dpb.Extension_ValueX{Choice: &dpb.Extension_ValueX_Code{Code: &dpb.Code{Value: r.Country}}},
		})
	}
	return a
}

func gateway(obs Observer) *aepb.AuditEvent_Agent {
	return &aepb.AuditEvent_Agent{
		Type: concept(SystemDICOM, "110152", "Destination Role ID"),
		Who: &dpb.Reference{
			Identifier: &dpb.Identifier{System: uri(SIDGateway), Value: str(obs.Instance)},
			Display:    str("Migrant Health Gateway"),
		},
		Requestor: &dpb.Boolean{Value: false},
	}
}

func patientEntity(ref string) (*aepb.AuditEvent_Entity, error) {
	id := strings.TrimPrefix(ref, "Patient/")
	if id == "" || !isID(id) {
		return nil, fmt.Errorf("audit: patient reference is not Patient/<id>")
	}
	return &aepb.AuditEvent_Entity{
		What: &dpb.Reference{Reference: &dpb.Reference_PatientId{PatientId: &dpb.ReferenceId{Value: id}}},
		Type: coding(SystemEntityType, "1", "Person"),
		Role: coding(SystemObjectRole, "1", "Patient"),
	}, nil
}

func requestEntity(e Entry, interaction string) *aepb.AuditEvent_Entity {
	ent := &aepb.AuditEvent_Entity{
		Role: coding(SystemObjectRole, "4", "Domain Resource"),
	}
	if e.ResourceType != "" {
		ent.Type = coding(SystemResourceTypes, e.ResourceType, e.ResourceType)
	} else {
		ent.Type = coding(SystemEntityType, "2", "System Object")
	}
	ent.Detail = append(ent.Detail, detail(DetailInteraction, interaction))
	if e.Operation != "" {
		ent.Detail = append(ent.Detail, detail(DetailOperation, e.Operation))
	}
	if e.Status != 0 {
		ent.Detail = append(ent.Detail, detail(DetailHTTPStatus, strconv.Itoa(e.Status)))
	}
	types := make([]string, 0, len(e.Released))
	for t := range e.Released {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		ent.Detail = append(ent.Detail, detail(DetailReleasedPrefix+t, strconv.Itoa(e.Released[t])))
	}
	ent.Detail = append(ent.Detail, detail(DetailBreakGlass, strconv.FormatBool(e.BreakGlass)))
	return ent
}

func sourceEntity(id string) *aepb.AuditEvent_Entity {
	return &aepb.AuditEvent_Entity{
		What: &dpb.Reference{Identifier: &dpb.Identifier{System: uri(SIDSource), Value: str(id)}},
		Type: coding(SystemEntityType, "2", "System Object"),
		Role: coding(SystemObjectRole, "17", "Data Repository"),
	}
}

func decisionEntity(d Decision, breakGlass bool) *aepb.AuditEvent_Entity {
	ent := &aepb.AuditEvent_Entity{
		Type: coding(SystemEntityType, "2", "System Object"),
		Role: coding(SystemObjectRole, "13", "Security Resource"),
		Name: str("policy decision"),
	}
	if d.ID != "" {
		ent.What = &dpb.Reference{Identifier: &dpb.Identifier{System: uri(SIDDecision), Value: str(d.ID)}}
		ent.Detail = append(ent.Detail, detail(DetailDecisionID, d.ID))
	}
	if d.Phase != "" {
		ent.Detail = append(ent.Detail, detail(DetailPhase, d.Phase))
	}
	if d.Source != "" {
		ent.Detail = append(ent.Detail, detail(DetailSource, d.Source))
	}
	ent.Detail = append(ent.Detail, detail(DetailAllow, strconv.FormatBool(d.Allow)))
	if len(d.Reasons) > 0 {
		ent.Detail = append(ent.Detail, detail(DetailRuleIDs, strings.Join(d.Reasons, " ")))
	}
	if d.Revision != "" {
		ent.Detail = append(ent.Detail, detail(DetailPolicyRevision, d.Revision))
	}
	ent.Detail = append(ent.Detail, detail(DetailBreakGlass, strconv.FormatBool(breakGlass)))
	return ent
}

func traceEntity(traceID, spanID string) *aepb.AuditEvent_Entity {
	ent := &aepb.AuditEvent_Entity{
		What: &dpb.Reference{Identifier: &dpb.Identifier{System: uri(SIDTrace), Value: str(traceID)}},
		Type: coding(SystemBALPEntity, "XrequestId", "X-Request-Id"),
		Name: str("trace"),
	}
	ent.Detail = append(ent.Detail, detail(DetailTraceID, traceID))
	if spanID != "" {
		ent.Detail = append(ent.Detail, detail(DetailSpanID, spanID))
	}
	return ent
}

// action maps a FHIR interaction to the AuditEvent action, as BALP does:
// reads are R, searches and operations E (execute).
func action(interaction string) cpb.AuditEventActionCode_Value {
	switch interaction {
	case "read", "vread", "history-instance", "history-type", "history-system", "capabilities":
		return cpb.AuditEventActionCode_R
	case "create":
		return cpb.AuditEventActionCode_C
	case "update", "patch":
		return cpb.AuditEventActionCode_U
	case "delete":
		return cpb.AuditEventActionCode_D
	default:
		return cpb.AuditEventActionCode_E
	}
}

// outcomeCode maps the entry outcome: success 0, denied 4 (minor failure:
// the request was refused as policy says), failed 8 (serious failure).
func outcomeCode(o string) cpb.AuditEventOutcomeCode_Value {
	switch o {
	case OutcomeSuccess:
		return cpb.AuditEventOutcomeCode_SUCCESS
	case OutcomeDenied:
		return cpb.AuditEventOutcomeCode_MINOR_FAILURE
	default:
		return cpb.AuditEventOutcomeCode_SERIOUS_FAILURE
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

func str(s string) *dpb.String { return &dpb.String{Value: s} }
func uri(s string) *dpb.Uri    { return &dpb.Uri{Value: s} }

func coding(system, code, display string) *dpb.Coding {
	c := &dpb.Coding{System: uri(system), Code: &dpb.Code{Value: code}}
	if display != "" {
		c.Display = str(display)
	}
	return c
}

func concept(system, code, display string) *dpb.CodeableConcept {
	return &dpb.CodeableConcept{Coding: []*dpb.Coding{coding(system, code, display)}}
}

func detail(typ, value string) *aepb.AuditEvent_Entity_Detail {
	return &aepb.AuditEvent_Entity_Detail{
		Type: str(typ),
		Value: &aepb.AuditEvent_Entity_Detail_ValueX{
			Choice: &aepb.AuditEvent_Entity_Detail_ValueX_StringValue{StringValue: str(value)},
		},
	}
}

func instant(t time.Time) *dpb.Instant {
	return &dpb.Instant{ValueUs: t.UnixMicro(), Timezone: "Z", Precision: dpb.Instant_MICROSECOND}
}

func dateTime(t time.Time) *dpb.DateTime {
	return &dpb.DateTime{ValueUs: t.UnixMicro(), Timezone: "Z", Precision: dpb.DateTime_MICROSECOND}
}

// isCode reports whether s matches the FHIR code pattern [^\s]+( [^\s]+)*.
func isCode(s string) bool {
	if s == "" || s[0] == ' ' || s[len(s)-1] == ' ' || strings.Contains(s, "  ") {
		return false
	}
	return !strings.ContainsAny(s, "\t\n\r")
}

// isID reports whether s is a FHIR id: [A-Za-z0-9\-\.]{1,64}.
func isID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
