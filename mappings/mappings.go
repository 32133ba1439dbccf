package mappings

import (
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"time"
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

// Options are per-call mapping settings. The zero value maps with upstream
// ids kept, no meta.source, religion dropped and withheld data discarded.
type Options struct {
	// SourceID names the source, written to meta.source and Provenance.
	// Empty: no meta.source.
	SourceID string
	// Country is the source's ISO 3166-1 alpha-2 country. Empty: the
	// country of the national profile (none for ips).
	Country string
	// ID turns an upstream (type, id) into the id the output carries; it is
	// applied to the resource id and to every reference. Nil keeps ids.
	// Outputs derived from a resource (the migration-context of a Patient,
	// a Provenance) are passed DerivedID(upstreamID, kind) as upstream id.
	ID func(resourceType, upstreamID string) string
	// DerivedID gives the id of an output that has no national original of
	// its own (kind "migration-context" for the restricted Observation
	// split out of a Patient, "provenance" for a Provenance), from the
	// upstream id of the resource it derives from. Nil: ID(resourceType,
	// DerivedID(upstreamID, kind)) when ID is set, else the upstream id
	// with a suffix. A gateway whose ids cannot hold the longer derived
	// upstream id encodes (kind, upstream id) here instead.
	DerivedID func(resourceType, upstreamID, kind string) string
	// ResolveReference turns a reference that is not Type/id (a Bundle's
	// urn:uuid, an absolute URL of the source) into "Type/id", or reports
	// false. It runs before ID. Nil: such references are kept when ID is
	// nil and removed (display kept) when it is set, so that no upstream id
	// leaves.
	ResolveReference func(reference string) (string, bool)
	// KeepReligion keeps patient-religion (the patient asked, e.g. for
	// pastoral or dietary care). False: it is dropped with an information
	// issue and handed to Withheld.
	KeepReligion bool
	// Withheld receives data the mapping removes because it must not leave
	// the country of origin (race, ethnicity, indigenous status, religion):
	// the hook for a local statistics pipeline. It is called synchronously.
	// Nil: the data is discarded.
	Withheld func(Withheld)
	// Now stamps Provenance.recorded. Nil: time.Now.
	Now func() time.Time
	// Tree hands each output over as its decoded JSON tree (Output.Tree)
	// instead of its bytes (Output.JSON stays nil): what a caller that reads
	// the outputs at once rather than sending them (statistics) saves in
	// encoding and decoding again.
	Tree bool
}

// Withheld is one item of data the mapping kept out of its output.
type Withheld struct {
	// Kind is "origin-only" (race, ethnicity, indigenous status) or
	// "religion".
	Kind string
	// ResourceType and UpstreamID name the resource it came from.
	ResourceType, UpstreamID string
	// URL is the extension URL.
	URL string
	// JSON is the extension as it was in the input.
	JSON []byte
}

// Output is one mapped MHP resource.
type Output struct {
	// Type is the FHIR resource type.
	Type string
	// ID is the output id (after Options.ID).
	ID string
	// UpstreamID is the id the national original had. For an output
	// derived from a resource it is DerivedID(upstream id, kind).
	UpstreamID string
	// Class is ClassClinical or ClassSensitive.
	Class string
	// JSON is the MHP resource as R4 JSON; nil when Options.Tree is set.
	JSON []byte
	// Tree is the MHP resource as decoded JSON when Options.Tree is set:
	// objects as map[string]any, arrays as []any, numbers as json.Number,
	// exactly what decoding JSON with UseNumber gives. Nil otherwise.
	Tree map[string]any
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
	// Domestic marks an issue that may be told only in the country of the
	// source: it says the record held a protected attribute that never
	// leaves its country of origin (race, ethnicity, indigenous status,
	// religion), which a foreign requester must not learn either.
	Domestic bool `json:",omitempty"`
}

// Result is what mapping one national resource produced.
type Result struct {
	// Outputs are the MHP resources: the main one first, then any split
	// out of it (a migration-context Observation from a Patient).
	Outputs []Output
	// Issues is the loss report.
	Issues []Issue
}

// Engine maps national resources into the MHP. It is immutable after
// Load and safe for concurrent use.
type Engine struct {
	plans map[string]*plan
}

// Load compiles the mapping specs built into the binary. An error names
// every broken spec file and line; the gateway must not start with it.
func Load() (*Engine, error) { return LoadFS(Specs) }

// LoadFS compiles the specs of a spec tree laid out as mappings/ is:
// common/ plus one folder per national profile. Errors wrap ErrInvalidSpec;
// each is a *SpecError.
func LoadFS(fsys fs.FS) (*Engine, error) {
	plans, err := compileTree(fsys)
	if err != nil {
		return nil, err
	}
	return &Engine{plans: plans}, nil
}

// Profiles lists the national profile ids the engine maps, sorted.
func (e *Engine) Profiles() []string {
	out := make([]string, 0, len(e.plans))
	for id := range e.plans {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// ProfileInfo describes a national profile mapping.
type ProfileInfo struct {
	// ID is the profile id used by config, $to-mhp and mhg map.
	ID string
	// Title is the human name of the national profile.
	Title string
	// Country is its ISO 3166-1 alpha-2 country, empty for ips.
	Country string
	// Version is the mapping version (spec version + content hash).
	Version string
	// NationalProfiles are the canonical URLs of the national profiles
	// the mapping reads.
	NationalProfiles []string
	// ResourceTypes are the covered resource types, sorted.
	ResourceTypes []string
}

// Profile describes one national profile mapping, or false.
func (e *Engine) Profile(id string) (ProfileInfo, bool) {
	p, ok := e.plans[id]
	if !ok {
		return ProfileInfo{}, false
	}
	info := ProfileInfo{ID: p.profile, Title: p.title, Country: p.country, Version: p.version,
		NationalProfiles: append([]string(nil), p.national...)}
	for t := range p.resources {
		info.ResourceTypes = append(info.ResourceTypes, t)
	}
	sort.Strings(info.ResourceTypes)
	return info, true
}

// Version returns the mapping version of a profile, part of cache keys: the
// spec's version plus a hash of its files, so any edit changes it. Empty
// for an unknown profile.
func (e *Engine) Version(profile string) string {
	if p, ok := e.plans[profile]; ok {
		return p.version
	}
	return ""
}

// Map maps one national resource (R4 JSON) of the given profile. The input
// should be valid R4 (sources and $to-mhp check it with r4.Parse); for
// valid input every output is valid R4. Errors wrap ErrUnknownProfile or
// ErrNotMappable and never quote the input.
func (e *Engine) Map(profile string, in []byte, opts Options) (Result, error) {
	p, ok := e.plans[profile]
	if !ok {
		return Result{}, fmt.Errorf("%w: %q", ErrUnknownProfile, profile)
	}
	root, err := decodeObject(in)
	if err != nil {
		return Result{}, fmt.Errorf("%w: input is not a JSON object: %v", ErrNotMappable, err)
	}
	return p.mapResource(root, opts, nil)
}

// DerivedID is the upstream id given to an output that has no national
// original of its own (a migration-context split out of a Patient, a
// Provenance): the original's id and the kind, joined by "/", which no FHIR
// id contains.
func DerivedID(upstreamID, kind string) string { return upstreamID + "/" + kind }
