package audit

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/gateway/auth"
)

var (
	clinician = auth.Requester{
		ClientID: "client-de-1", Org: "org-charite", Country: "DE", Role: "clinician",
		PurposeOfUse: "TREAT", Scopes: []string{"system/Patient.rs"},
	}
	testTime = time.Date(2026, 11, 28, 10, 0, 0, 123456000, time.UTC)
)

// entryFor returns a realistic entry for outcome.
func entryFor(outcome string) Entry {
	e := Entry{
		Time:         testTime,
		TraceID:      "4bf92f3577b34da6a3ce929d0e0e4736",
		SpanID:       "00f067aa0ba902b7",
		Requester:    clinician,
		Interaction:  "operation",
		ResourceType: "Patient",
		Operation:    "summary",
		Patient:      "Patient/gw-7f3a9c",
		Sources:      []string{"de-sample", "ua-sample"},
		Outcome:      outcome,
		Decisions: []Decision{
			{ID: "dec-1", Phase: "query", Source: "de-sample", Allow: true, Reasons: []string{"agreement.de-ua.permit"}, Revision: "rev-42"},
			{ID: "dec-2", Phase: "release", Source: "ua-sample", Allow: outcome != OutcomeDenied, Reasons: []string{"consent.permit", "scope.ok"}, Revision: "rev-42"},
		},
	}
	switch outcome {
	case OutcomeSuccess:
		e.Status = 200
		e.Released = map[string]int{"Patient": 1, "Condition": 3}
	case OutcomeDenied:
		e.Status = 403
		e.Decisions[1].Reasons = []string{"consent.deny.revoked"}
	default:
		e.Status = 502
	}
	return e
}

// parsedEvent renders e, checks it with the R4 codec and returns the JSON
// as a generic map for the assertions.
func parsedEvent(t *testing.T, e Entry) map[string]any {
	t.Helper()
	b, err := Render(e, "6e2b1c4a-9d7f-4b1e-8c2a-1f0e3d5c7b9a", testTime.Add(time.Second), Observer{Site: "eu-west", Instance: "mhg-0"})
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	if _, err := r4.Parse(b); err != nil {
		t.Fatalf("AuditEvent is not valid R4: %v\n%s", err, b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// entities returns the entities whose role (or type) code is code.
func entities(m map[string]any, code string) []map[string]any {
	var out []map[string]any
	list, _ := m["entity"].([]any)
	for _, x := range list {
		ent := x.(map[string]any)
		role, _ := ent["role"].(map[string]any)
		typ, _ := ent["type"].(map[string]any)
		if role != nil && role["code"] == code || role == nil && typ["code"] == code {
			out = append(out, ent)
		}
	}
	return out
}

func details(ent map[string]any) map[string]string {
	d := map[string]string{}
	list, _ := ent["detail"].([]any)
	for _, x := range list {
		m := x.(map[string]any)
		d[m["type"].(string)] = m["valueString"].(string)
	}
	return d
}

func TestRenderIsValidR4(t *testing.T) {
	breakGlass := entryFor(OutcomeSuccess)
	breakGlass.Requester.PurposeOfUse = "ETREAT"
	breakGlass.Requester.BreakGlass = true
	breakGlass.BreakGlass = true

	minimal := Entry{Outcome: OutcomeFailed}

	search := entryFor(OutcomeSuccess)
	search.Interaction, search.Operation, search.ResourceType, search.Patient = "search-type", "", "Observation", ""

	read := entryFor(OutcomeSuccess)
	read.Interaction, read.Operation = "read", ""

	tests := []struct {
		name        string
		entry       Entry
		outcome     string
		action      string
		desc        string
		purposes    []string
		breakGlass  string
		wantPatient bool
	}{
		{"success", entryFor(OutcomeSuccess), "0", "E", "", []string{"TREAT"}, "false", true},
		{"denied", entryFor(OutcomeDenied), "4", "E", "denied by policy: consent.deny.revoked", []string{"TREAT"}, "false", true},
		{"failed", entryFor(OutcomeFailed), "8", "E", "failed with HTTP status 502", []string{"TREAT"}, "false", true},
		{"break-glass", breakGlass, "0", "E", "", []string{"ETREAT", "BTG"}, "true", true},
		{"read", read, "0", "R", "", []string{"TREAT"}, "false", true},
		{"search without patient", search, "0", "E", "", []string{"TREAT"}, "false", false},
		{"minimal", minimal, "8", "R", "failed", nil, "false", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := parsedEvent(t, tc.entry)
			if m["resourceType"] != "AuditEvent" || m["id"] != "6e2b1c4a-9d7f-4b1e-8c2a-1f0e3d5c7b9a" {
				t.Errorf("resourceType %v id %v", m["resourceType"], m["id"])
			}
			if typ := m["type"].(map[string]any); typ["system"] != SystemEventType || typ["code"] != "rest" {
				t.Errorf("type = %v", typ)
			}
			sub := m["subtype"].([]any)[0].(map[string]any)
			wantSub := tc.entry.Interaction
			if wantSub == "" {
				wantSub = "read"
			}
			if sub["system"] != SystemInteraction || sub["code"] != wantSub {
				t.Errorf("subtype = %v, want %s", sub, wantSub)
			}
			if m["action"] != tc.action || m["outcome"] != tc.outcome {
				t.Errorf("action %v outcome %v, want %s %s", m["action"], m["outcome"], tc.action, tc.outcome)
			}
			if got, _ := m["outcomeDesc"].(string); got != tc.desc {
				t.Errorf("outcomeDesc %q, want %q", got, tc.desc)
			}
			if m["recorded"] != "2026-11-28T10:00:01.123456Z" {
				t.Errorf("recorded %v", m["recorded"])
			}
			var purposes []string
			if list, ok := m["purposeOfEvent"].([]any); ok {
				for _, p := range list {
					c := p.(map[string]any)["coding"].([]any)[0].(map[string]any)
					if c["system"] != SystemActReason {
						t.Errorf("purpose system %v", c["system"])
					}
					purposes = append(purposes, c["code"].(string))
				}
			}
			if strings.Join(purposes, ",") != strings.Join(tc.purposes, ",") {
				t.Errorf("purposes %v, want %v", purposes, tc.purposes)
			}

			agents := m["agent"].([]any)
			if len(agents) != 2 {
				t.Fatalf("agents = %d, want requester and gateway", len(agents))
			}
			req, gw := agents[0].(map[string]any), agents[1].(map[string]any)
			if req["requestor"] != true || gw["requestor"] != false {
				t.Errorf("requestor flags %v %v", req["requestor"], gw["requestor"])
			}
			src := m["source"].(map[string]any)
			if src["site"] != "eu-west" || src["observer"].(map[string]any)["identifier"].(map[string]any)["value"] != "mhg-0" {
				t.Errorf("source = %v", src)
			}

			patients := entities(m, "1")
			if tc.wantPatient {
				if len(patients) != 1 || patients[0]["what"].(map[string]any)["reference"] != "Patient/gw-7f3a9c" {
					t.Errorf("patient entity = %v", patients)
				}
			} else if len(patients) != 0 {
				t.Errorf("patient entity present: %v", patients)
			}

			for _, d := range entities(m, "13") {
				if got := details(d)[DetailBreakGlass]; got != tc.breakGlass {
					t.Errorf("decision break-glass = %q, want %q", got, tc.breakGlass)
				}
			}
			if len(entities(m, "13")) != len(tc.entry.Decisions) {
				t.Errorf("decision entities = %d, want %d", len(entities(m, "13")), len(tc.entry.Decisions))
			}
			if len(entities(m, "17")) != len(tc.entry.Sources) {
				t.Errorf("source entities = %d, want %d", len(entities(m, "17")), len(tc.entry.Sources))
			}
			traces := entities(m, "XrequestId")
			if tc.entry.TraceID == "" {
				if len(traces) != 0 {
					t.Errorf("trace entity without a trace id: %v", traces)
				}
				return
			}
			if len(traces) != 1 || details(traces[0])[DetailTraceID] != tc.entry.TraceID ||
				traces[0]["what"].(map[string]any)["identifier"].(map[string]any)["value"] != tc.entry.TraceID {
				t.Errorf("trace entity = %v, want trace id %s", traces, tc.entry.TraceID)
			}
		})
	}
}

func TestRenderRequesterAndDecisions(t *testing.T) {
	m := parsedEvent(t, entryFor(OutcomeSuccess))
	req := m["agent"].([]any)[0].(map[string]any)
	who := req["who"].(map[string]any)
	if who["identifier"].(map[string]any)["value"] != "client-de-1" || who["display"] != "org-charite" {
		t.Errorf("who = %v", who)
	}
	if role := req["role"].([]any)[0].(map[string]any)["coding"].([]any)[0].(map[string]any); role["code"] != "clinician" || role["system"] != CSRole {
		t.Errorf("role = %v", role)
	}
	ext := map[string]any{}
	for _, x := range req["extension"].([]any) {
		e := x.(map[string]any)
		ext[e["url"].(string)] = e
	}
	if org := ext[ExtAgentOrganization].(map[string]any)["valueIdentifier"].(map[string]any); org["value"] != "org-charite" {
		t.Errorf("organisation extension = %v", org)
	}
	if c := ext[ExtAgentCountry].(map[string]any)["valueCode"]; c != "DE" {
		t.Errorf("country extension = %v", c)
	}

	decs := entities(m, "13")
	want := []map[string]string{
		{DetailDecisionID: "dec-1", DetailPhase: "query", DetailSource: "de-sample", DetailAllow: "true", DetailRuleIDs: "agreement.de-ua.permit", DetailPolicyRevision: "rev-42"},
		{DetailDecisionID: "dec-2", DetailPhase: "release", DetailSource: "ua-sample", DetailAllow: "true", DetailRuleIDs: "consent.permit scope.ok", DetailPolicyRevision: "rev-42"},
	}
	for i, w := range want {
		d := details(decs[i])
		for k, v := range w {
			if d[k] != v {
				t.Errorf("decision %d %s = %q, want %q", i, k, d[k], v)
			}
		}
		if id := decs[i]["what"].(map[string]any)["identifier"].(map[string]any); id["system"] != SIDDecision || id["value"] != w[DetailDecisionID] {
			t.Errorf("decision %d what = %v", i, id)
		}
	}
	reqEnt := entities(m, "4")
	if len(reqEnt) != 1 {
		t.Fatalf("request entities = %d", len(reqEnt))
	}
	d := details(reqEnt[0])
	if d[DetailInteraction] != "operation" || d[DetailOperation] != "summary" || d[DetailHTTPStatus] != "200" ||
		d[DetailReleasedPrefix+"Condition"] != "3" || d[DetailReleasedPrefix+"Patient"] != "1" {
		t.Errorf("request details = %v", d)
	}
}

func TestRenderRejects(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Entry)
	}{
		{"interaction with a tab", func(e *Entry) { e.Interaction = "read\tx" }},
		{"purpose with double space", func(e *Entry) { e.Requester.PurposeOfUse = "TR  EAT" }},
		{"patient reference without id", func(e *Entry) { e.Patient = "Patient/" }},
		{"patient reference with a slash", func(e *Entry) { e.Patient = "Patient/a/b" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := entryFor(OutcomeSuccess)
			tc.edit(&e)
			if _, err := Render(e, "x", testTime, Observer{}); err == nil {
				t.Error("Render accepted the entry")
			} else if strings.Contains(err.Error(), "gw-7f3a9c") {
				t.Errorf("error quotes the patient id: %v", err)
			}
		})
	}
}
