package source

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// Source is what Open returns: one national EHR source. It exists only to
// name Open's result; consumers declare the (identical or smaller)
// interface they need themselves.
type Source interface {
	// ID is the configured source id.
	ID() string
	// Country is the ISO 3166-1 alpha-2 code of the country holding it.
	Country() string
	// Profile is the national profile id its resources follow.
	Profile() string
	// Read returns one resource by type and logical id.
	Read(ctx context.Context, resourceType, id string) (Resource, error)
	// Search returns every resource of resourceType matching params, in a
	// stable order.
	Search(ctx context.Context, resourceType string, params url.Values) ([]Resource, error)
	// Check tells whether the source can answer now (a readiness probe).
	Check(ctx context.Context) error
}

// Source kinds (Options.Kind): which connector Open builds.
const (
	// KindFHIR is a national FHIR REST server (FHIR).
	KindFHIR = "fhir"
	// KindBundle is a directory of FHIR Bundles and NDJSON files (Bundle).
	KindBundle = "bundle"
)

// How a source is searched by demographic traits (Options.PatientMatch,
// PatientMatch on the connectors).
const (
	// PatientMatchSearch: standard searches on family, given and
	// birthdate, the candidates scored by the gateway.
	PatientMatchSearch = "search"
	// PatientMatchPhonetic: as PatientMatchSearch, with the Patient
	// phonetic parameter, which the source matches across spellings.
	PatientMatchPhonetic = "phonetic"
	// PatientMatchOperation: the source answers Patient/$match (IHE PDQm
	// ITI-119) itself; the gateway forwards the request.
	PatientMatchOperation = "operation"
)

// Options describe one source and how the gateway talks to it. ID and Kind
// are required, BaseURL for a FHIR source and Dir or BuiltinDir for a
// bundle source; every other zero value is a sensible default.
type Options struct {
	// ID names the source in logs, metrics, errors and gateway ids.
	// Required.
	ID string
	// Country is the ISO 3166-1 alpha-2 code of the country that holds
	// the source. Empty leaves it unknown, and the policy asks no such
	// source.
	Country string
	// Profile is the national profile id its resources follow (de-basis,
	// us-core, ...), as known to the mapping engine. Empty leaves it
	// unknown, and nothing maps its resources.
	Profile string
	// Kind is KindFHIR or KindBundle; Open refuses anything else.
	Kind string
	// PatientMatch is how Patient/$match asks the source:
	// PatientMatchSearch, PatientMatchPhonetic or PatientMatchOperation.
	// Empty means PatientMatchSearch for a FHIR source and
	// PatientMatchPhonetic for a bundle source, which implements it.
	PatientMatch string

	// BaseURL is the FHIR base of a FHIR source, an absolute http(s) URL
	// without query or fragment. Required for KindFHIR.
	BaseURL string
	// Auth is how the gateway authenticates to a FHIR source. The zero
	// value sends no credentials.
	Auth Auth
	// Timeout bounds one call to a FHIR source, retries and pages
	// included. Zero means 10s.
	Timeout time.Duration
	// Retries is how many times an idempotent GET is retried after a
	// transient failure. Zero means none.
	Retries int
	// MaxPages bounds how many Bundle "next" links one search follows.
	// Zero means 10.
	MaxPages int
	// MaxResponseBytes bounds one response body. Zero means 16 MiB.
	MaxResponseBytes int64
	// Breaker tunes the circuit breaker of a FHIR source. The zero value
	// opens after 5 consecutive failures, for 30s.
	Breaker Breaker
	// RateLimit caps how fast the gateway calls a FHIR source, across all
	// requests of this replica, so that the gateway does not cause the
	// throttling it would then have to wait out. The zero value sets no
	// limit.
	RateLimit RateLimit
	// HTTPClient is used by FHIR sources. Nil means a client per source
	// with dial, TLS and header timeouts, W3C trace-context propagation
	// through otelhttp, client spans whose URL is reduced to the base and
	// resource type (no ids, no query), and redirects refused when they
	// leave the source's host. A client given here is used as it is: its
	// owner answers for what its instrumentation records.
	HTTPClient *http.Client
	// RetryBackoff is the first delay before retrying a GET; later ones
	// double, each drawn with jitter from [d/2, d). Zero means 200ms.
	RetryBackoff time.Duration
	// MaxRetryBackoff caps one backoff delay (not a Retry-After the source
	// asked for, which is honoured when it fits in the deadline). Zero means
	// 5s.
	MaxRetryBackoff time.Duration

	// Dir is the directory on disk of a bundle source. Required for
	// KindBundle unless BuiltinDir is set.
	Dir string
	// BuiltinDir names a folder of Builtin that holds a bundle source's
	// files instead of Dir. Empty means Dir.
	BuiltinDir string
	// Builtin is the file system behind BuiltinDir (sample data compiled
	// into the binary). Nil means BuiltinDir cannot be opened.
	Builtin fs.FS

	// Logger receives operational events (retries, breaker changes,
	// duplicate resources), never ids, URLs with queries or content. Nil
	// means slog.Default().
	Logger *slog.Logger
	// Now reads the clock for Retry-After dates. Nil means time.Now.
	Now func() time.Time
	// MeterProvider records every source's calls, errors and breaker state
	// (MetricRequests, MetricErrors, MetricDuration, MetricBreakerState).
	// Nil means the global OpenTelemetry meter provider.
	MeterProvider metric.MeterProvider
}

// Auth is how the gateway authenticates to a national FHIR server. Secrets
// are read from files when the connector is built, never logged.
type Auth struct {
	// Type is "" (no credentials), "bearer" (a static token) or "basic".
	Type string
	// TokenFile holds the bearer token. Required for "bearer".
	TokenFile string
	// Username is the user name of "basic". Required for "basic".
	Username string
	// PasswordFile holds the password of "basic". Required for "basic".
	PasswordFile string
}

// Breaker tunes a FHIR source's circuit breaker.
type Breaker struct {
	// Failures is how many consecutive failures open the breaker. Zero
	// means 5.
	Failures int
	// OpenFor is how long the breaker stays open before one trial call.
	// Zero means 30s.
	OpenFor time.Duration
}

// RateLimit is a token bucket: PerSecond calls a second on average, Burst
// at once.
type RateLimit struct {
	// PerSecond is how many calls (HTTP requests, pages and retries
	// included) a second the source gets on average. Zero means no limit.
	PerSecond float64
	// Burst is how many calls may go at once. Zero means
	// max(1, ceil(PerSecond)).
	Burst int
}

const (
	defaultTimeout         = 10 * time.Second
	defaultRetryBackoff    = 200 * time.Millisecond
	defaultMaxRetryBackoff = 5 * time.Second
)

func (o Options) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.Default()
}

func (o Options) now() func() time.Time {
	if o.Now != nil {
		return o.Now
	}
	return time.Now
}

// Open turns one source into a connector: a *FHIR for KindFHIR, a *Bundle
// for KindBundle. Credentials and bundle files are read here, so a source
// that cannot work fails at start, not on the first request.
func Open(opts Options) (Source, error) {
	switch opts.Kind {
	case KindFHIR:
		s, err := NewFHIR(opts)
		if err != nil {
			return nil, err
		}
		return s, nil
	case KindBundle:
		b, err := OpenBundle(opts)
		if err != nil {
			return nil, err
		}
		return b, nil
	default:
		return nil, fmt.Errorf("source %s: unknown kind %q", opts.ID, opts.Kind)
	}
}

var (
	_ Source = (*FHIR)(nil)
	_ Source = (*Bundle)(nil)
)
