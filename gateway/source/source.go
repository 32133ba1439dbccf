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

	"github.com/migrant-health/mhg/gateway/config"
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

// Options are what Open needs beyond a source's own configuration. The zero
// value is usable: every field documents what its zero value means.
type Options struct {
	// HTTPClient is used by "fhir" sources. Nil means a client per source
	// with dial, TLS and header timeouts, W3C trace-context propagation
	// through otelhttp, client spans whose URL is reduced to the base and
	// resource type (no ids, no query), and redirects refused when they
	// leave the source's host. A client given here is used as it is: its
	// owner answers for what its instrumentation records.
	HTTPClient *http.Client
	// Builtin is the file system behind "bundle" directories written
	// config.BuiltinPrefix + name: the folder name inside Builtin. Nil means
	// such directories cannot be opened.
	Builtin fs.FS
	// Logger receives operational events (retries, breaker changes,
	// duplicate resources), never ids, URLs with queries or content. Nil
	// means slog.Default().
	Logger *slog.Logger
	// DefaultTimeout bounds one call (retries and pages included) to a
	// source whose config sets no Timeout. Zero means 10s.
	DefaultTimeout time.Duration
	// RetryBackoff is the first delay before retrying a GET; later ones
	// double, each drawn with jitter from [d/2, d). Zero means 200ms.
	RetryBackoff time.Duration
	// MaxRetryBackoff caps one backoff delay (not a Retry-After the source
	// asked for, which is honoured when it fits in the deadline). Zero means
	// 5s.
	MaxRetryBackoff time.Duration
	// Now reads the clock for Retry-After dates. Nil means time.Now.
	Now func() time.Time
	// MeterProvider records every source's calls, errors and breaker state
	// (MetricRequests, MetricErrors, MetricDuration, MetricBreakerState).
	// Nil means the global OpenTelemetry meter provider.
	MeterProvider metric.MeterProvider
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

// Open turns one configured source into a connector: a *FHIR for kind
// "fhir", a *Bundle for kind "bundle". Credentials and bundle files are
// read here, so a source that cannot work fails at start, not on the first
// request.
func Open(spec config.Source, opts Options) (Source, error) {
	switch spec.Kind {
	case config.KindFHIR:
		s, err := NewFHIR(spec, opts)
		if err != nil {
			return nil, err
		}
		return s, nil
	case config.KindBundle:
		b, err := OpenBundle(spec, opts)
		if err != nil {
			return nil, err
		}
		return b, nil
	default:
		return nil, fmt.Errorf("source %s: unknown kind %q", spec.ID, spec.Kind)
	}
}

var (
	_ Source = (*FHIR)(nil)
	_ Source = (*Bundle)(nil)
)
