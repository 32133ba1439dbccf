package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	"google.golang.org/protobuf/proto"

	"github.com/migrant-health/mhg/conformance/r4"
)

// Severity is an OperationOutcome issue severity.
type Severity string

// Issue severities, as in R4 OperationOutcome.issue.severity.
const (
	SeverityFatal       Severity = "fatal"
	SeverityError       Severity = "error"
	SeverityWarning     Severity = "warning"
	SeverityInformation Severity = "information"
)

// Issue codes used by the checker (R4 IssueType, the OperationOutcome
// issue.code value set).
const (
	CodeStructure   = "structure"    // not valid R4, or a type not allowed
	CodeRequired    = "required"     // a minimum cardinality is not met
	CodeValue       = "value"        // a fixed or pattern value does not match
	CodeInvariant   = "invariant"    // an invariant (ips-pat-1, bdl-ips-1, mhp-...) fails
	CodeCodeInvalid = "code-invalid" // a code is outside a required ValueSet
	CodeProcessing  = "processing"   // profile problems: unknown or missing profile, too many repetitions
	CodeNotFound    = "not-found"    // a claimed MHP profile is not shipped
)

// Issue is one problem the checker found. Message and Location never hold a
// value taken from the resource (no names, identifiers, dates, codes of the
// patient): they are safe to log. Diagnostics may quote the input and must
// only go back to whoever sent it.
type Issue struct {
	Severity Severity `json:"severity"`
	// Code is the R4 IssueType (the Code* constants).
	Code string `json:"code"`
	// Location is a FHIRPath-like path to the element, with indexes where
	// the JSON has arrays: "Patient.identifier[1].system".
	Location string `json:"location,omitempty"`
	// Message says what is wrong in terms of the profile.
	Message string `json:"message"`
	// Rule names the broken rule: an ElementDefinition id
	// ("Patient.identifier:mpi.system") or an invariant key ("ips-pat-1").
	Rule string `json:"rule,omitempty"`
	// Profile is the canonical URL of the profile whose rule is broken.
	Profile string `json:"profile,omitempty"`
	// Diagnostics may quote the input (R4 parse errors do): response only.
	Diagnostics string `json:"diagnostics,omitempty"`
}

// String renders the issue for test output and logs.
func (i Issue) String() string {
	var b strings.Builder
	b.WriteString(string(i.Severity))
	b.WriteString(" ")
	b.WriteString(i.Code)
	if i.Location != "" {
		b.WriteString(" at ")
		b.WriteString(i.Location)
	}
	if i.Rule != "" {
		b.WriteString(" [")
		b.WriteString(i.Rule)
		b.WriteString("]")
	}
	b.WriteString(": ")
	b.WriteString(i.Message)
	return b.String()
}

// HasErrors reports whether any issue is an error or fatal.
func HasErrors(issues []Issue) bool {
	for _, i := range issues {
		if i.Severity == SeverityError || i.Severity == SeverityFatal {
			return true
		}
	}
	return false
}

// Options configure a Checker. The zero value checks every resource against
// the MHP profiles it claims, and accepts a resource that claims none.
type Options struct {
	// Require makes a missing MHP profile an error for every resource an
	// MHP profile is meant for, top-level or nested (Bundle entry, contained
	// resource): the types with an MHP profile, except non-document Bundles
	// and Observations that are neither laboratory results nor a migration
	// context. Organization, Practitioner, Medication, vital signs and the
	// like need no claim. False: a resource that claims no MHP profile is
	// only checked for R4 validity, MHP extensions and forbidden codes.
	Require bool
	// Profiles are checked in addition to those the top-level resource
	// claims in meta.profile (canonical URLs, optionally with |version).
	// Nil: only the claimed ones.
	Profiles []string
}

// msgUnsupportedInput is the fatal issue for a Check argument that is
// neither JSON nor a resource proto: a programming error of the caller.
const msgUnsupportedInput = "input is neither R4 JSON nor an R4 resource proto"

// Checker validates resources against the MHP profiles. It is built once
// from the embedded StructureDefinitions and ValueSets (compiled into a
// plan) and is safe for concurrent use.
type Checker struct {
	opts Options
	plan *plan
}

// NewChecker compiles the embedded MHP artifacts. An error means a shipped
// artifact is broken (a test keeps that from happening).
func NewChecker(opts Options) (*Checker, error) {
	p, err := compiledPlan()
	if err != nil {
		return nil, err
	}
	for _, u := range opts.Profiles {
		u, _, _ = strings.Cut(u, "|")
		if _, ok := p.profiles[u]; !ok {
			return nil, fmt.Errorf("conformance: options: unknown profile %s", u)
		}
	}
	return &Checker{opts: opts, plan: p}, nil
}

var (
	planOnce sync.Once
	thePlan  *plan
	planErr  error

	defaultOnce    sync.Once
	defaultChecker *Checker
	defaultErr     error
)

func compiledPlan() (*plan, error) {
	planOnce.Do(func() { thePlan, planErr = compile() })
	return thePlan, planErr
}

// Check validates one resource with the default Checker (zero Options). res
// is R4 JSON ([]byte, json.RawMessage or string) or a resource proto (a
// *ContainedResource or a concrete resource message).
func Check(res any) []Issue {
	defaultOnce.Do(func() { defaultChecker, defaultErr = NewChecker(Options{}) })
	if defaultErr != nil {
		return []Issue{{Severity: SeverityFatal, Code: CodeProcessing, Message: "profile checker unavailable: " + defaultErr.Error()}}
	}
	return defaultChecker.Check(res)
}

// Check validates one resource: R4 JSON ([]byte, json.RawMessage or string)
// or a resource proto. It never panics on bad input; the answer for a
// conformant resource is nil.
func (c *Checker) Check(res any) []Issue {
	switch v := res.(type) {
	case []byte:
		return c.CheckJSON(v)
	case json.RawMessage:
		return c.CheckJSON(v)
	case string:
		return c.CheckJSON([]byte(v))
	case proto.Message:
		return c.CheckProto(v)
	default:
		return []Issue{{Severity: SeverityFatal, Code: CodeProcessing, Message: msgUnsupportedInput}}
	}
}

// CheckJSON validates one resource in R4 JSON form: first R4 itself
// (google/fhir), then the MHP profiles.
func (c *Checker) CheckJSON(b []byte) []Issue {
	if _, err := r4.Parse(b); err != nil {
		return []Issue{{
			Severity:    SeverityError,
			Code:        CodeStructure,
			Message:     "not a valid FHIR R4 resource",
			Diagnostics: err.Error(),
		}}
	}
	return c.checkTree(b)
}

// CheckProto validates a resource proto. It is marshalled and parsed again,
// so that the R4 rules the proto types cannot hold are checked too.
func (c *Checker) CheckProto(m proto.Message) []Issue {
	if m == nil {
		return []Issue{{Severity: SeverityFatal, Code: CodeProcessing, Message: msgUnsupportedInput}}
	}
	// r4.Marshal renders a ContainedResource as a wrapper object, not as
	// the resource, so unwrap it first.
	if cr, ok := m.(*rpb.ContainedResource); ok {
		m = r4.Resource(cr)
		if m == nil {
			return []Issue{{Severity: SeverityError, Code: CodeStructure, Message: "empty ContainedResource"}}
		}
	}
	b, err := r4.Marshal(m)
	if err != nil {
		return []Issue{{Severity: SeverityError, Code: CodeStructure, Message: "resource cannot be rendered as R4 JSON", Diagnostics: err.Error()}}
	}
	return c.CheckJSON(b)
}

func (c *Checker) checkTree(b []byte) []Issue {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var root map[string]any
	if err := dec.Decode(&root); err != nil {
		return []Issue{{Severity: SeverityError, Code: CodeStructure, Message: "not a JSON object", Diagnostics: err.Error()}}
	}
	w := &walker{plan: c.plan, opts: &c.opts}
	rt, _ := root["resourceType"].(string)
	w.globals(root, rt)
	w.resource(root, rt, c.opts.Profiles)
	return w.result()
}
