package fhirapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/migrant-health/mhg/gateway/federate"
)

// Error is a failure the API answers with an OperationOutcome. Message is
// safe to log (it never holds patient data); Diagnostics goes only into the
// response.
type Error struct {
	// Status is the HTTP status.
	Status int
	// Code is the OperationOutcome issue type (invalid, not-found, ...).
	Code string
	// Message is a log-safe description.
	Message string
	// Diagnostics is response-only detail; it may quote the request.
	Diagnostics string
	// Err is the underlying error, if any.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%d %s: %s: %v", e.Status, e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

func errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Outcome is an R4 OperationOutcome.
type Outcome struct {
	ResourceType string  `json:"resourceType"`
	ID           string  `json:"id,omitempty"`
	Issue        []Issue `json:"issue"`
}

// Issue is one OperationOutcome issue.
type Issue struct {
	Severity    string   `json:"severity"`
	Code        string   `json:"code"`
	Details     *Concept `json:"details,omitempty"`
	Diagnostics string   `json:"diagnostics,omitempty"`
	Expression  []string `json:"expression,omitempty"`
	Location    []string `json:"location,omitempty"`
}

// Concept is a CodeableConcept with text and codings.
type Concept struct {
	Coding []Coding `json:"coding,omitempty"`
	Text   string   `json:"text,omitempty"`
}

// Coding is an R4 Coding.
type Coding struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code,omitempty"`
	Display string `json:"display,omitempty"`
}

// policyRuleSystem names the code system of policy rule ids in
// OperationOutcome details, so a client can tell which rules refused.
const policyRuleSystem = "https://fhir.migrant-health.org/mhp/CodeSystem/policy-rule"

// asError turns any error into an *Error with the right status. Unknown
// errors are internal errors: they mean a bug, never bad input.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if e := attachmentError(err); e != nil {
		return e
	}
	var denied *federate.DeniedError
	var failed *federate.SourcesFailedError
	switch {
	case errors.As(err, &denied):
		return &Error{Status: http.StatusForbidden, Code: "forbidden",
			Message: "the policy does not allow this request; the rules that refused it are listed in details", Err: err}
	case errors.Is(err, federate.ErrAmbiguous):
		return &Error{Status: http.StatusConflict, Code: "multiple-matches",
			Message: "the identifier names more than one person in the sources that hold it, and they are not records a source merged: no record can be chosen safely; search Patient?identifier= and ask for one record by its id", Err: err}
	case errors.Is(err, federate.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Code: "not-found", Message: "resource not found", Err: err}
	case errors.As(err, &failed):
		if failed.Throttled {
			return &Error{Status: http.StatusServiceUnavailable, Code: "throttled",
				Message: "every permitted national source asked the gateway to wait; try again after Retry-After", Err: err}
		}
		if failed.Timeout {
			return &Error{Status: http.StatusGatewayTimeout, Code: "timeout", Message: "no permitted national source answered in time", Err: err}
		}
		return &Error{Status: http.StatusBadGateway, Code: "transient", Message: "no permitted national source could answer", Err: err}
	case errors.Is(err, federate.ErrTraits):
		var te *federate.TraitsError
		msg := "not enough traits: the rules of the sources that may be asked require more traits than were given"
		if errors.As(err, &te) && len(te.Sources) > 0 {
			msg += " (sources " + strings.Join(te.Sources, ", ") + "; see their agreements)"
		}
		return &Error{Status: http.StatusUnprocessableEntity, Code: "incomplete", Message: msg, Err: err}
	case errors.Is(err, federate.ErrInvalid):
		return &Error{Status: http.StatusBadRequest, Code: "invalid", Message: err.Error(), Err: err}
	}
	return &Error{Status: http.StatusInternalServerError, Code: "exception", Message: "internal error", Err: err}
}

// outcomeOf renders an error as an OperationOutcome.
func outcomeOf(e *Error) Outcome {
	issue := Issue{Severity: "error", Code: e.Code, Diagnostics: e.Message}
	if e.Diagnostics != "" && e.Diagnostics != e.Message {
		issue.Diagnostics = e.Message + ": " + e.Diagnostics
	}
	var denied *federate.DeniedError
	if errors.As(e.Err, &denied) && len(denied.Reasons) > 0 {
		c := &Concept{Text: "Policy rules that refused the request"}
		for _, r := range denied.Reasons {
			c.Coding = append(c.Coding, Coding{System: policyRuleSystem, Code: r})
		}
		issue.Details = c
	}
	if e.Status >= 500 && e.Status != http.StatusBadGateway && e.Status != http.StatusGatewayTimeout && e.Status != http.StatusServiceUnavailable {
		issue.Severity = "fatal"
	}
	return Outcome{ResourceType: "OperationOutcome", Issue: []Issue{issue}}
}

// retryAfter is the Retry-After header (whole seconds, at least 1) of an
// answer no source could give because they all throttled the gateway; ""
// for any other error.
func retryAfter(err error) string {
	var failed *federate.SourcesFailedError
	if !errors.As(err, &failed) || !failed.Throttled {
		return ""
	}
	return strconv.Itoa(max(1, int(math.Ceil(failed.RetryAfter.Seconds()))))
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own literal structs are marshalled here.
		panic(fmt.Sprintf("fhirapi: marshal %T: %v", v, err))
	}
	return b
}
