package audit

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Event is an AuditEvent this package rendered, read back into the terms
// of the Entry it came from. The console's timeline, review queue and
// disclosure report are rendered from it, and so is every row of the
// disclosure report's CSV and FHIR operation: the same record, read once.
type Event struct {
	// ID is the AuditEvent id; Recorded when it was recorded, Start when
	// the request was received.
	ID       string
	Recorded time.Time
	Start    time.Time
	// Interaction, ResourceType and Operation say what was asked.
	Interaction  string
	ResourceType string
	Operation    string
	// Outcome is OutcomeSuccess, OutcomeDenied or OutcomeFailed; Status
	// the HTTP status answered; OutcomeDesc why it did not succeed.
	Outcome     string
	Status      int
	OutcomeDesc string
	// ClientID, Org, Country and Role say who asked.
	ClientID string
	Org      string
	Country  string
	Role     string
	// Purpose is the purpose of use (BTG is BreakGlass, not a purpose).
	Purpose    string
	BreakGlass bool
	// Patient is the gateway Patient id concerned, "" when none.
	Patient string
	// Sources are the national sources contacted.
	Sources []string
	// Released counts what was released, by resource type.
	Released map[string]int
	// Decisions are the policy decisions of the request.
	Decisions []Decision
	// TraceID is the W3C trace id of the request.
	TraceID string
	// Review is set on an auditor's review record.
	Review *Review
}

// ParseEvent reads an AuditEvent (R4 JSON) rendered by Render.
func ParseEvent(b []byte) (Event, error) {
	var ev event
	if err := json.Unmarshal(b, &ev); err != nil {
		return Event{}, fmt.Errorf("audit: parse AuditEvent: %w", err)
	}
	if ev.ResourceType != "AuditEvent" {
		return Event{}, fmt.Errorf("audit: parse AuditEvent: resourceType is %q", ev.ResourceType)
	}
	out := Event{ID: ev.ID, Outcome: outcomeName(ev.Outcome), OutcomeDesc: ev.OutcomeDesc, Released: map[string]int{}}
	out.Recorded, _ = time.Parse(time.RFC3339Nano, ev.Recorded)
	if ev.Period != nil {
		out.Start, _ = time.Parse(time.RFC3339Nano, ev.Period.Start)
	}
	if len(ev.Subtype) > 0 {
		out.Interaction = ev.Subtype[0].Code
	}
	for _, p := range ev.PurposeOfEvent {
		for _, c := range p.Coding {
			if c.Code == "BTG" {
				out.BreakGlass = true
			} else if out.Purpose == "" {
				out.Purpose = c.Code
			}
		}
	}
	for _, a := range ev.Agent {
		if !a.Requestor {
			continue
		}
		if a.Who != nil {
			if a.Who.Identifier != nil {
				out.ClientID = a.Who.Identifier.Value
			}
		}
		for _, r := range a.Role {
			for _, c := range r.Coding {
				if c.System == CSRole {
					out.Role = c.Code
				}
			}
		}
		for _, x := range a.Extension {
			switch x.URL {
			case ExtAgentOrganization:
				if x.ValueIdentifier != nil {
					out.Org = x.ValueIdentifier.Value
				}
			case ExtAgentCountry:
				out.Country = x.ValueCode
			}
		}
	}
	for _, en := range ev.Entity {
		details := map[string]string{}
		for _, d := range en.Detail {
			details[d.Type] = d.ValueString
		}
		role := ""
		if en.Role != nil && en.Role.System == SystemObjectRole {
			role = en.Role.Code
		}
		switch {
		case role == "1" && en.What != nil:
			out.Patient = strings.TrimPrefix(en.What.Reference, "Patient/")
		case en.Name == EntityReviewed && en.What != nil:
			out.Review = &Review{EventID: strings.TrimPrefix(en.What.Reference, "AuditEvent/"), Note: en.Description}
		case role == "4":
			if en.Type != nil && en.Type.System == SystemResourceTypes {
				out.ResourceType = en.Type.Code
			}
			out.Operation = details[DetailOperation]
			out.Status, _ = strconv.Atoi(details[DetailHTTPStatus])
			for k, v := range details {
				if t, ok := strings.CutPrefix(k, DetailReleasedPrefix); ok {
					out.Released[t], _ = strconv.Atoi(v)
				}
			}
		case role == "17" && en.What != nil && en.What.Identifier != nil:
			out.Sources = append(out.Sources, en.What.Identifier.Value)
		case role == "13" && en.Name == "policy decision":
			d := Decision{ID: details[DetailDecisionID], Phase: details[DetailPhase], Source: details[DetailSource],
				Allow: details[DetailAllow] == "true", Revision: details[DetailPolicyRevision], Class: details[DetailDataClass]}
			d.Reasons = strings.Fields(details[DetailRuleIDs])
			d.Agreements = strings.Fields(details[DetailAgreements])
			out.Decisions = append(out.Decisions, d)
		case en.Name == "trace":
			out.TraceID = details[DetailTraceID]
		}
	}
	return out, nil
}

func outcomeName(code string) string {
	switch code {
	case "0":
		return OutcomeSuccess
	case "4":
		return OutcomeDenied
	}
	return OutcomeFailed
}

// ReleasedTypes are the resource types released, sorted.
func (e Event) ReleasedTypes() []string {
	out := make([]string, 0, len(e.Released))
	for t, n := range e.Released {
		if n > 0 {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out
}

// DataClasses are the data classes of what the release decisions allowed
// (C clinical, S migration status), sorted.
func (e Event) DataClasses() []string {
	var out []string
	for _, d := range e.Decisions {
		if d.Allow && d.Class != "" && !slices.Contains(out, d.Class) {
			out = append(out, d.Class)
		}
	}
	slices.Sort(out)
	return out
}

// Agreements are the agreements the allowing decisions relied on, sorted.
func (e Event) Agreements() []string {
	var out []string
	for _, d := range e.Decisions {
		if !d.Allow {
			continue
		}
		for _, a := range d.Agreements {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	slices.Sort(out)
	return out
}

// Rules are the rule ids of the decisions that decided the outcome: the
// allowing decisions' for a success, the refusing ones' otherwise.
func (e Event) Rules() []string {
	var out []string
	for _, d := range e.Decisions {
		if d.Allow != (e.Outcome == OutcomeSuccess) {
			continue
		}
		for _, r := range d.Reasons {
			if !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
	}
	slices.Sort(out)
	return out
}
