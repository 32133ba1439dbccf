package mappings

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Data classes of mapped output.
const (
	// ClassClinical is class C: shared for care under consent and purpose.
	ClassClinical = "C"
	// ClassSensitive is class S: firewalled migration and status data.
	ClassSensitive = "S"
)

// Errors callers branch on.
var (
	// ErrUnknownProfile: no mapping is registered for the profile id.
	ErrUnknownProfile = errors.New("unknown national profile")
	// ErrNotMappable: the input cannot be mapped (not a resource, a type the
	// profile does not cover, or a violation the spec calls an error).
	ErrNotMappable = errors.New("not mappable")
)

// Options are per-call mapping settings.
type Options struct {
	// SourceID names the source, written to meta.source and Provenance.
	SourceID string
	// Country is the source's ISO 3166-1 alpha-2 country.
	Country string
	// ID turns an upstream (type, id) into the id the output carries; it is
	// applied to the resource id and to every reference. Nil keeps ids.
	ID func(resourceType, upstreamID string) string
}

// Output is one mapped MHP resource.
type Output struct {
	// Type is the FHIR resource type.
	Type string
	// ID is the output id (after Options.ID).
	ID string
	// UpstreamID is the id the national original had.
	UpstreamID string
	// Class is ClassClinical or ClassSensitive.
	Class string
	// JSON is the MHP resource as R4 JSON.
	JSON []byte
}

// Issue is something the mapping dropped, approximated or could not do. It
// never quotes patient data.
type Issue struct {
	// Severity is error, warning or information (OperationOutcome).
	Severity string
	// Code is an OperationOutcome issue type (not-supported, code-invalid,
	// incomplete, processing ...).
	Code string
	// Path is a FHIRPath-like location in the input.
	Path string
	// Message says what happened, without patient data.
	Message string
}

// Result is what mapping one national resource produced.
type Result struct {
	// Outputs are the MHP resources: the main one first, then any split
	// out of it (a migration-context Observation from a Patient).
	Outputs []Output
	// Issues is the loss report.
	Issues []Issue
}

// Engine maps national resources into the MHP.
type Engine struct{}

// Load compiles the mapping specs built into the binary.
func Load() (*Engine, error) { return &Engine{}, nil }

// Version returns the mapping version of a profile, part of cache keys.
func (e *Engine) Version(profile string) string { return "0" }

// Map maps one national resource (R4 JSON) of the given profile.
func (e *Engine) Map(profile string, in []byte, opts Options) (Result, error) {
	var m map[string]any
	if err := json.Unmarshal(in, &m); err != nil {
		return Result{}, fmt.Errorf("%w: %v", ErrNotMappable, err)
	}
	typ, _ := m["resourceType"].(string)
	id, _ := m["id"].(string)
	out := Output{Type: typ, ID: id, UpstreamID: id, Class: ClassClinical}
	if opts.ID != nil {
		out.ID = opts.ID(typ, id)
		m["id"] = out.ID
	}
	b, err := json.Marshal(m)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %v", ErrNotMappable, err)
	}
	out.JSON = b
	return Result{Outputs: []Output{out}}, nil
}
