package federate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"

	"github.com/migrant-health/mhg/conformance/measures"
	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/authz"
	"github.com/migrant-health/mhg/gateway/cache"
	"github.com/migrant-health/mhg/gateway/match"
	"github.com/migrant-health/mhg/gateway/source"
	"github.com/migrant-health/mhg/mappings"
)

// Source is what federate needs from a national source.
type Source interface {
	// ID, Country and Profile come from configuration.
	ID() string
	Country() string
	Profile() string
	// Read returns one resource; errors wrap the source package's sentinels.
	Read(ctx context.Context, resourceType, id string) (source.Resource, error)
	// Search returns every match (following paging up to the source's bound).
	Search(ctx context.Context, resourceType string, params url.Values) ([]source.Resource, error)
	// Check probes readiness.
	Check(ctx context.Context) error
}

// Mapper turns national resources into MHP resources.
type Mapper interface {
	Map(profile string, in []byte, opts mappings.Options) (mappings.Result, error)
	Version(profile string) string
}

// Decider is the policy decision point.
type Decider interface {
	Decide(ctx context.Context, in authz.Input) (authz.Decision, error)
}

// Cache is the read-through cache of mapped data.
type Cache interface {
	Fetch(ctx context.Context, key cache.Key, refresh bool, load cache.Loader) ([]byte, error)
}

// Purger is what ForgetPatient and PurgeSource need of a Cache that can
// drop entries: what one patient or one source left in it.
type Purger interface {
	PurgeTag(ctx context.Context, tag string) (int, error)
	PurgeSource(ctx context.Context, source string) (int, error)
}

// Errors callers branch on.
var (
	// ErrDenied: the policy refused; errors.As gives a *DeniedError with
	// the reasons.
	ErrDenied = errors.New("denied by policy")
	// ErrNotFound: the resource does not exist (or the id names no source).
	ErrNotFound = errors.New("resource not found")
	// ErrSourcesFailed: every permitted source failed; errors.As gives a
	// *SourcesFailedError saying whether they timed out.
	ErrSourcesFailed = errors.New("no permitted source answered")
	// ErrInvalid: the request cannot be served as asked (a bad parameter
	// value); the message is safe to return.
	ErrInvalid = errors.New("invalid request")
)

// DeniedError carries the policy's reasons for a refusal.
type DeniedError struct {
	Reasons []string
}

func (e *DeniedError) Error() string { return fmt.Sprintf("denied by policy: %v", e.Reasons) }

// Is makes errors.Is(err, ErrDenied) true.
func (e *DeniedError) Is(target error) bool { return target == ErrDenied }

// SourcesFailedError says every permitted source failed.
type SourcesFailedError struct {
	// Timeout is set when every failure was a timeout.
	Timeout bool
	// Throttled is set when every source asked the gateway to wait longer
	// than the request could (source.ErrThrottled).
	Throttled bool
	// RetryAfter is the shortest wait a throttled source asked for; zero
	// when none said.
	RetryAfter time.Duration
}

func (e *SourcesFailedError) Error() string {
	if e.Throttled {
		return "every permitted source asked the gateway to wait"
	}
	if e.Timeout {
		return "every permitted source timed out"
	}
	return "every permitted source failed"
}

// Is makes errors.Is(err, ErrSourcesFailed) true.
func (e *SourcesFailedError) Is(target error) bool { return target == ErrSourcesFailed }

// Options configure a Service.
type Options struct {
	// Sources are the national sources, in the order results are listed.
	Sources []Source
	// Mapper maps national resources into the MHP. Required.
	Mapper Mapper
	// Decider takes every policy decision. Required.
	Decider Decider
	// Cache holds mapped results; nil means every call reaches the source.
	Cache Cache
	// IDs seals upstream ids into gateway ids. Required.
	IDs *IDCodec
	// Deadline bounds a whole fan-out. Zero means 10s.
	Deadline time.Duration
	// SourceTimeout bounds each source's part of a fan-out. Zero means 5s.
	SourceTimeout time.Duration
	// Logger receives log-safe events. Nil discards them.
	Logger *slog.Logger
	// MatchModel scores Patient/$match candidates. Nil means
	// match.Default().
	MatchModel *match.Model
	// Measures are the measures EvaluateMeasure computes; nil disables
	// statistics.
	Measures *measures.Catalogue
	// StatisticsDeadline bounds a whole EvaluateMeasure. Zero means 2m.
	StatisticsDeadline time.Duration
}

// Service answers FHIR requests from the national sources.
type Service struct {
	opts    Options
	sources []Source
	byID    map[string]Source
	log     *slog.Logger
}

// New returns a Service.
func New(opts Options) (*Service, error) {
	if opts.Mapper == nil || opts.Decider == nil || opts.IDs == nil {
		return nil, errors.New("federate: Mapper, Decider and IDs are required")
	}
	if opts.Deadline <= 0 {
		opts.Deadline = 10 * time.Second
	}
	if opts.SourceTimeout <= 0 {
		opts.SourceTimeout = 5 * time.Second
	}
	if opts.StatisticsDeadline <= 0 {
		opts.StatisticsDeadline = 2 * time.Minute
	}
	s := &Service{opts: opts, sources: opts.Sources, byID: map[string]Source{}, log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, src := range opts.Sources {
		if _, dup := s.byID[src.ID()]; dup {
			return nil, fmt.Errorf("federate: duplicate source id %q", src.ID())
		}
		s.byID[src.ID()] = src
	}
	return s, nil
}

// Sources returns the configured sources.
func (s *Service) Sources() []Source { return s.sources }

// Measures returns the measures EvaluateMeasure computes; nil when
// statistics are off.
func (s *Service) Measures() *measures.Catalogue { return s.opts.Measures }

// StatisticsDeadline is how long one EvaluateMeasure may run
// (Options.StatisticsDeadline after defaults).
func (s *Service) StatisticsDeadline() time.Duration { return s.opts.StatisticsDeadline }

// source returns the configured source of that id.
func (s *Service) source(id string) (Source, bool) {
	src, ok := s.byID[id]
	return src, ok
}

// mappingVersion is the version of a profile's mapping.
func (s *Service) mappingVersion(profile string) string { return s.opts.Mapper.Version(profile) }

// The Linker works through these: the Service's options stay its own.
func (s *Service) mapper() Mapper               { return s.opts.Mapper }
func (s *Service) deadline() time.Duration      { return s.opts.Deadline }
func (s *Service) sourceTimeout() time.Duration { return s.opts.SourceTimeout }
func (s *Service) logger() *slog.Logger         { return s.log }
func (s *Service) decodeID(typ, id string) (source string, upstream string, err error) {
	return s.opts.IDs.Decode(typ, id)
}

// absorb takes in what a goroutine's slot recorded: decisions, warnings
// and contacts, in that order.
func (r *Result) absorb(part *Result) {
	r.Decisions = append(r.Decisions, part.Decisions...)
	r.Notify = r.Notify || part.Notify
	r.Warnings = append(r.Warnings, part.Warnings...)
	for _, c := range part.Contacted {
		r.contacted(c)
	}
}

// Request describes who asks what.
type Request struct {
	// Requester is who asks.
	Requester auth.Requester
	// Interaction is the FHIR interaction (read, search-type, operation).
	Interaction string
	// ResourceType is the type asked for.
	ResourceType string
	// Operation is the operation name without "$", for operations.
	Operation string
	// NoCache forces a refresh from the sources (Cache-Control: no-cache).
	NoCache bool
	// MatchTraits are the kinds of trait a demographic search gave
	// (Patient/$match); the query phase sees them. Nil for other requests.
	MatchTraits []string
}

// Entry is one released MHP resource.
type Entry struct {
	// Resource is the resource, with the policy's obligations applied.
	Resource *rpb.ContainedResource
	// Type and ID are its type and gateway id.
	Type string
	ID   string
	// Source is the id of the source it came from.
	Source string
	// Loss is the mapping's report of what it dropped or approximated.
	Loss []mappings.Issue
	// Match says how a Patient/$match candidate matched; nil otherwise.
	Match *MatchInfo
}

// Warning says a source could not contribute. It names the source, never
// the patient.
type Warning struct {
	// Source is the source id.
	Source string
	// Code is timeout, unavailable, invalid-response, rejected, mapping,
	// throttled (WarnThrottled), incomplete (WarnIncomplete), or, for a
	// search that stopped before the source's last page, WarnTruncated or
	// WarnNextLink, or one of the other Warn* codes.
	Code string
	// Pages is how many pages the source's search read before it stopped
	// (WarnTruncated, WarnNextLink); 0 otherwise.
	Pages int
}

// DecisionRecord is one decision taken while answering a request.
type DecisionRecord struct {
	Phase    string
	Source   string
	Decision authz.Decision
	// Class is the data class of the resource a release decision was
	// about (C, S); empty for query decisions.
	Class string
}

// Result is what a request produced. It is returned with errors too, so
// that the decisions taken are audited.
type Result struct {
	// Entries are the released resources.
	Entries []Entry
	// Warnings name the sources that could not contribute.
	Warnings []Warning
	// Contacted are the ids of the sources contacted.
	Contacted []string
	// Decisions are every policy decision taken.
	Decisions []DecisionRecord
	// Patient is "Patient/<gateway id>" when the request concerns one.
	Patient string
	// Notify is set when a decision carried a notify obligation
	// (break-the-glass).
	Notify bool
}

// A Result is written by one goroutine only. Work that fans out (through
// inParallel) gives each goroutine a Result of its own (a slot) and absorbs
// the slots, in order, once all have returned.

// addDecision records a decision; class is the data class of the resource
// a release decision was about, "" for query decisions.
func (r *Result) addDecision(phase, src, class string, d authz.Decision) {
	r.Decisions = append(r.Decisions, DecisionRecord{Phase: phase, Source: src, Decision: d, Class: class})
	for _, o := range d.Obligations {
		if o.Kind == authz.ObligationNotify {
			r.Notify = true
		}
	}
}
