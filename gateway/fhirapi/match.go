package fhirapi

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/gateway/audit"
	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/federate"
)

// MatchLimiter says whether a requester may make another Patient/$match
// now, and if not, how long to wait.
type MatchLimiter interface {
	Allow(key string) (bool, time.Duration)
}

const (
	opMatch = "match"
	// OpPatientMatch is the FHIR R4 Patient-match OperationDefinition,
	// which IHE PDQm ITI-119 profiles.
	OpPatientMatch = "http://hl7.org/fhir/OperationDefinition/Patient-match"
	// extMatchGrade is the core extension on Bundle.entry.search.
	extMatchGrade = "http://hl7.org/fhir/StructureDefinition/match-grade"
)

// matchOperation serves POST Patient/$match.
func matchOperation() Operation {
	return Operation{Name: opMatch, Level: "type", ResourceType: "Patient", Definition: OpPatientMatch,
		Methods: []string{http.MethodPost}, Handle: func(h *Handler, c *gin.Context, _, _ string) { h.match(c) }}
}

// matchInput is what a $match request asks.
type matchInput struct {
	patient     json.RawMessage
	onlyCertain bool
	count       int
}

// readMatchInput reads a $match body: a Parameters resource with
// resource (a Patient), onlyCertainMatches and count (IHE PDQm Match Input
// Parameters), or a Patient posted on its own, as PDQm allows.
func (h *Handler) readMatchInput(c *gin.Context) (matchInput, *Error) {
	in := matchInput{count: h.opts.MatchDefaultCount}
	body, e := h.readBody(c)
	if e != nil {
		return in, e
	}
	var head struct {
		ResourceType string `json:"resourceType"`
	}
	if err := json.Unmarshal(body, &head); err != nil || (head.ResourceType != "Parameters" && head.ResourceType != "Patient") {
		return in, errorf(http.StatusBadRequest, "invalid", "send a Parameters resource with the Patient to match (or the Patient alone)")
	}
	if head.ResourceType == "Patient" {
		if _, err := r4.Parse(body); err != nil {
			return in, &Error{Status: http.StatusBadRequest, Code: "structure", Message: "the Patient is not valid FHIR R4", Diagnostics: err.Error()}
		}
		in.patient = body
		return in, nil
	}
	// The R4 codec does not read resources nested in Parameters: the
	// Parameters is checked without them, and the Patient on its own.
	var shell map[string]any
	_ = json.Unmarshal(body, &shell)
	if list, ok := shell["parameter"].([]any); ok {
		for _, x := range list {
			if m, ok := x.(map[string]any); ok {
				delete(m, "resource")
			}
		}
	}
	if b, err := json.Marshal(shell); err == nil {
		if _, err := r4.Parse(b); err != nil {
			return in, &Error{Status: http.StatusBadRequest, Code: "structure", Message: "the Parameters is not valid FHIR R4", Diagnostics: err.Error()}
		}
	}
	var p struct {
		Parameter []struct {
			Name         string          `json:"name"`
			Resource     json.RawMessage `json:"resource"`
			ValueBoolean *bool           `json:"valueBoolean"`
			ValueInteger *int            `json:"valueInteger"`
		} `json:"parameter"`
	}
	_ = json.Unmarshal(body, &p)
	seen := map[string]bool{}
	for _, prm := range p.Parameter {
		if seen[prm.Name] {
			return in, errorf(http.StatusBadRequest, "invalid", "parameter %s may be given once", safeParam(prm.Name))
		}
		seen[prm.Name] = true
		switch prm.Name {
		case "resource":
			var rt struct {
				ResourceType string `json:"resourceType"`
			}
			if json.Unmarshal(prm.Resource, &rt) != nil || rt.ResourceType != "Patient" {
				return in, errorf(http.StatusBadRequest, "invalid", "parameter resource must hold a Patient")
			}
			if _, err := r4.Parse(prm.Resource); err != nil {
				return in, &Error{Status: http.StatusBadRequest, Code: "structure", Message: "the Patient is not valid FHIR R4", Diagnostics: err.Error()}
			}
			in.patient = prm.Resource
		case "onlyCertainMatches":
			if prm.ValueBoolean == nil {
				return in, errorf(http.StatusBadRequest, "invalid", "onlyCertainMatches is a valueBoolean")
			}
			in.onlyCertain = *prm.ValueBoolean
		case "count":
			if prm.ValueInteger == nil || *prm.ValueInteger < 1 {
				return in, errorf(http.StatusBadRequest, "invalid", "count is a valueInteger of at least 1")
			}
			in.count = min(*prm.ValueInteger, h.opts.MaxCount)
		default:
			if handlingStrict(c.Request.Header) {
				return in, errorf(http.StatusBadRequest, "not-supported", "unknown parameter %s", safeParam(prm.Name))
			}
		}
	}
	if in.patient == nil {
		return in, errorf(http.StatusBadRequest, "required", "Patient/$match needs the parameter resource: the Patient to match")
	}
	return in, nil
}

// requesterKey identifies a requester for the rate limit: the client and
// its organisation, never a patient.
func requesterKey(r auth.Requester) string { return r.ClientID + "\x00" + r.Org }

// match serves POST Patient/$match (IHE PDQm ITI-119): a searchset of
// candidate Patients, each with search.score and the match-grade
// extension, best first.
func (h *Handler) match(c *gin.Context) {
	req := h.request(c, interactionOp, "Patient", opMatch)
	if h.opts.MatchLimiter != nil {
		if ok, wait := h.opts.MatchLimiter.Allow(requesterKey(req.Requester)); !ok {
			secs := max(1, int(math.Ceil(wait.Seconds())))
			c.Header("Retry-After", strconv.Itoa(secs))
			h.finish(c, req, nil, errorf(http.StatusTooManyRequests, "throttled",
				"too many Patient/$match requests from this client; try again in %d s", secs), 0, nil)
			return
		}
	}
	in, e := h.readMatchInput(c)
	if e != nil {
		h.finish(c, req, nil, e, 0, nil)
		return
	}
	traits, err := federate.PatientTraits(in.patient, req.Requester.Country)
	if err != nil {
		h.finish(c, req, nil, errorf(http.StatusBadRequest, "invalid", "the Patient to match cannot be read: %s", errMessage(err)), 0, nil)
		return
	}
	req.MatchTraits = traits.Kinds()
	res, err := h.opts.Federation.Match(c.Request.Context(), req, federate.MatchRequest{
		Traits: traits, OnlyCertain: in.onlyCertain, Count: in.count,
	})
	if err != nil {
		h.finish(c, req, res, err, 0, nil)
		return
	}
	total := len(res.Entries)
	b := bundle{ResourceType: "Bundle", Type: "searchset", Timestamp: now(), Total: &total, Meta: &bundleMeta{LastUpdated: now()}}
	for _, en := range res.Entries {
		js, err := h.marshal(en.Resource)
		if err != nil {
			h.finish(c, req, res, err, 0, nil)
			return
		}
		s := &entrySearch{Mode: "match"}
		if en.Match != nil {
			score := math.Round(en.Match.Score*10000) / 10000
			s.Score = &score
			s.Extension = []searchExtension{{URL: extMatchGrade, ValueCode: string(en.Match.Grade)}}
		}
		b.Entry = append(b.Entry, bundleEntry{FullURL: h.opts.BaseURL + "/Patient/" + en.ID, Resource: js, Search: s})
	}
	if oo := h.matchOutcome(res.Warnings); oo != nil {
		b.Entry = append(b.Entry, outcomeEntry(oo))
	}
	h.finish(c, req, res, nil, http.StatusOK, mustJSON(b))
}

// errMessage is the log-safe text of an error from the federation: its
// sentinel's message, which never quotes the request.
func errMessage(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return msg
}

// matchOutcome says what the client must know about a $match answer:
// sources that could not be asked or did not answer, and a search that
// found no candidate as confident as it asked. None of it depends on
// whether the person exists.
func (h *Handler) matchOutcome(warnings []federate.Warning) *Outcome {
	var issues []Issue
	for _, w := range warnings {
		switch w.Code {
		case federate.WarnTraits:
			issues = append(issues, Issue{Severity: "warning", Code: "incomplete",
				Diagnostics: fmt.Sprintf("not enough traits: source %s was not asked; the agreement with its country requires more traits than were given", w.Source)})
		case federate.WarnRefused:
			issues = append(issues, Issue{Severity: "warning", Code: "business-rule",
				Diagnostics: fmt.Sprintf("source %s did not answer: answering would break the source's rules", w.Source)})
		case federate.WarnConfidence:
			issues = append(issues, Issue{Severity: "information", Code: "business-rule",
				Diagnostics: "confidence below what the request needs: no single candidate is a certain match (onlyCertainMatches)"})
		default:
			issues = append(issues, sourceIssue(w, "candidates"))
		}
	}
	if len(issues) == 0 {
		return nil
	}
	return &Outcome{ResourceType: "OperationOutcome", Issue: issues}
}

// matchAudit adds what a $match audit record names: the trait kinds used
// and every candidate returned with its grade.
func matchAudit(entry *audit.Entry, req federate.Request, res *federate.Result, status int) {
	entry.MatchTraits = req.MatchTraits
	entry.Patient = ""
	if res == nil || status < 200 || status > 299 {
		return
	}
	for _, e := range res.Entries {
		grade := ""
		if e.Match != nil {
			grade = string(e.Match.Grade)
		}
		entry.Candidates = append(entry.Candidates, audit.Candidate{Patient: "Patient/" + e.ID, Grade: grade})
	}
}
