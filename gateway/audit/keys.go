package audit

import (
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"
)

// Keys are the values of one AuditEvent that auditors' searches select on
// (the Query fields), read from an event this package rendered. The local
// index and the PostgreSQL repository store the same keys, so both answer a
// Query alike.
type Keys struct {
	// ID is the AuditEvent id.
	ID string
	// Recorded is AuditEvent.recorded; zero when it does not parse.
	Recorded time.Time
	// Patient is the bare gateway Patient id, "" when none.
	Patient string
	// Agents are the requester's client id and organisation identifier.
	Agents []string
	// Client and Org are the same two, apart ("" when absent).
	Client, Org string
	// Purposes are the purpose-of-use codes, BTG included.
	Purposes []string
	// Outcome is the AuditEvent outcome code (0, 4, 8, 12).
	Outcome string
	// Country is the requester's country.
	Country string
	// Operation is the operation asked for, without "$".
	Operation string
	// BreakGlass is set when the purposes include BTG.
	BreakGlass bool
	// TraceID is the W3C trace id of the request, "" when none.
	TraceID string
}

// eventKeys are the parts of an AuditEvent KeysOf reads. Only events this
// package rendered are indexed, so their shape is known.
type eventKeys struct {
	ID             string `json:"id"`
	Recorded       string `json:"recorded"`
	Outcome        string `json:"outcome"`
	PurposeOfEvent []struct {
		Coding []struct {
			Code string `json:"code"`
		} `json:"coding"`
	} `json:"purposeOfEvent"`
	Agent []struct {
		Requestor bool `json:"requestor"`
		Who       struct {
			Identifier struct {
				Value string `json:"value"`
			} `json:"identifier"`
		} `json:"who"`
		Extension []struct {
			URL             string `json:"url"`
			ValueIdentifier struct {
				Value string `json:"value"`
			} `json:"valueIdentifier"`
			ValueCode string `json:"valueCode"`
		} `json:"extension"`
	} `json:"agent"`
	Entity []struct {
		What struct {
			Reference  string `json:"reference"`
			Identifier struct {
				System string `json:"system"`
				Value  string `json:"value"`
			} `json:"identifier"`
		} `json:"what"`
		Role struct {
			System string `json:"system"`
			Code   string `json:"code"`
		} `json:"role"`
		Detail []struct {
			Type        string `json:"type"`
			ValueString string `json:"valueString"`
		} `json:"detail"`
	} `json:"entity"`
}

// KeysOf reads the search keys of an AuditEvent. An event that does not
// parse has no keys (ok false); it still belongs to the chain and matches
// only unfiltered searches.
func KeysOf(event []byte) (k Keys, ok bool) {
	var ek eventKeys
	if json.Unmarshal(event, &ek) != nil {
		return Keys{}, false
	}
	k.ID = ek.ID
	if t, err := time.Parse(time.RFC3339Nano, ek.Recorded); err == nil {
		k.Recorded = t
	}
	k.Outcome = ek.Outcome
	for _, p := range ek.PurposeOfEvent {
		for _, c := range p.Coding {
			k.Purposes = append(k.Purposes, c.Code)
			k.BreakGlass = k.BreakGlass || c.Code == "BTG"
		}
	}
	for _, a := range ek.Agent {
		if !a.Requestor {
			continue
		}
		if v := a.Who.Identifier.Value; v != "" {
			k.Agents = append(k.Agents, v)
			k.Client = v
		}
		for _, x := range a.Extension {
			if x.URL == ExtAgentOrganization && x.ValueIdentifier.Value != "" {
				k.Agents = append(k.Agents, x.ValueIdentifier.Value)
				k.Org = x.ValueIdentifier.Value
			}
			if x.URL == ExtAgentCountry {
				k.Country = x.ValueCode
			}
		}
	}
	for _, en := range ek.Entity {
		if en.What.Identifier.System == SIDTrace {
			k.TraceID = en.What.Identifier.Value
		}
		if en.Role.System != SystemObjectRole {
			continue
		}
		switch en.Role.Code {
		case "1":
			k.Patient = strings.TrimPrefix(en.What.Reference, "Patient/")
		case "4":
			for _, d := range en.Detail {
				if d.Type == DetailOperation {
					k.Operation = d.ValueString
				}
			}
		}
	}
	return k, true
}

// OutcomeCode is the AuditEvent outcome code a Query's Outcome selects:
// an Entry outcome (success, denied, failed) becomes 0, 4 or 8; a code is
// kept as it is.
func OutcomeCode(o string) string { return outcomeFilter(o) }

// keys are the search keys of an event this package built, read from the
// struct before it is marshalled: what KeysOf reads back from its JSON,
// without parsing it on the request's path. ok is false when a string the
// keys take is not valid UTF-8 (which the JSON would carry changed); the
// caller then reads the rendered JSON with KeysOf.
func (ev *event) keys() (k Keys, ok bool) {
	valid := true
	str := func(s string) string {
		valid = valid && utf8.ValidString(s)
		return s
	}
	k.ID = str(ev.ID)
	if t, err := time.Parse(time.RFC3339Nano, ev.Recorded); err == nil {
		k.Recorded = t
	}
	k.Outcome = str(ev.Outcome)
	for _, p := range ev.PurposeOfEvent {
		for _, c := range p.Coding {
			k.Purposes = append(k.Purposes, str(c.Code))
			k.BreakGlass = k.BreakGlass || c.Code == "BTG"
		}
	}
	for _, a := range ev.Agent {
		if !a.Requestor {
			continue
		}
		if a.Who != nil && a.Who.Identifier != nil && a.Who.Identifier.Value != "" {
			v := str(a.Who.Identifier.Value)
			k.Agents = append(k.Agents, v)
			k.Client = v
		}
		for _, x := range a.Extension {
			if x.URL == ExtAgentOrganization && x.ValueIdentifier != nil && x.ValueIdentifier.Value != "" {
				v := str(x.ValueIdentifier.Value)
				k.Agents = append(k.Agents, v)
				k.Org = v
			}
			if x.URL == ExtAgentCountry {
				k.Country = str(x.ValueCode)
			}
		}
	}
	for _, en := range ev.Entity {
		if en.What != nil && en.What.Identifier != nil && en.What.Identifier.System == SIDTrace {
			k.TraceID = str(en.What.Identifier.Value)
		}
		if en.Role == nil || en.Role.System != SystemObjectRole {
			continue
		}
		switch en.Role.Code {
		case "1":
			ref := ""
			if en.What != nil {
				ref = en.What.Reference
			}
			k.Patient = str(strings.TrimPrefix(ref, "Patient/"))
		case "4":
			for _, d := range en.Detail {
				if d.Type == DetailOperation {
					k.Operation = str(d.ValueString)
				}
			}
		}
	}
	return k, valid
}
