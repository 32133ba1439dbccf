package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Exporter names, as OTEL_TRACES_EXPORTER and Options.Exporter spell them.
const (
	ExporterNone    = "none"
	ExporterConsole = "console"
	ExporterOTLP    = "otlp"
	// ExporterCustom is what Provider.Exporter reports when
	// Options.TraceExporter was given.
	ExporterCustom = "custom"
)

// ErrConfig is wrapped by Setup's errors about a bad exporter choice or
// protocol, so the caller can tell them from exporter start-up failures.
var ErrConfig = errors.New("telemetry: bad configuration")

// Options configure Setup. The standard OTEL_* variables (read from
// Environ) win over the fields that name them. The zero value exports no
// traces, names the service "mhg" and serves metrics.
type Options struct {
	// ServiceName is the service.name resource attribute;
	// OTEL_SERVICE_NAME overrides it. Empty means "mhg".
	ServiceName string
	// Exporter chooses the trace exporter by name: ExporterNone,
	// ExporterConsole or ExporterOTLP; OTEL_TRACES_EXPORTER overrides it.
	// Empty means ExporterNone.
	Exporter string
	// OTLPEndpoint is the collector of the OTLP exporter, a host:port or a
	// base URL (the signal path is appended for http/protobuf);
	// OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
	// override it. Empty means the exporter's own default.
	OTLPEndpoint string
	// OTLPProtocol is ProtocolGRPC or ProtocolHTTP;
	// OTEL_EXPORTER_OTLP_PROTOCOL and OTEL_EXPORTER_OTLP_TRACES_PROTOCOL
	// override it. Empty means ProtocolHTTP.
	OTLPProtocol string
	// Sampler decides which traces are recorded when an exporter is in
	// use (RatioSampler builds the usual one); OTEL_TRACES_SAMPLER, when
	// set, replaces it. Nil means every trace. With no exporter nothing is
	// recorded, whatever the sampler.
	Sampler sdktrace.Sampler
	// TraceExporter, when set, replaces the exporter chosen by Exporter
	// and the environment (tests inject a tracetest.InMemoryExporter). It
	// is wrapped by the allow-list like any other. Nil means choose from
	// OTEL_TRACES_EXPORTER, then Exporter.
	TraceExporter sdktrace.SpanExporter
	// SyncExport exports each span as it ends instead of in batches, so a
	// test sees spans without flushing. False means batching.
	SyncExport bool
	// Logger receives telemetry's own errors (a collector that cannot be
	// reached). Nil means slog.Default().
	Logger *slog.Logger
	// Environ is the environment read for OTEL_TRACES_EXPORTER,
	// OTEL_EXPORTER_OTLP_*PROTOCOL, OTEL_EXPORTER_OTLP_*ENDPOINT and
	// OTEL_TRACES_SAMPLER*, in os.Environ form. Nil means os.Environ(). The
	// OTLP exporters themselves read their other variables (headers,
	// certificates, timeouts) from the process environment.
	Environ []string
	// Stdout is where the console exporter writes. Nil means os.Stdout.
	Stdout io.Writer
	// ServiceVersion is the service.version resource attribute. Empty omits
	// it.
	ServiceVersion string
	// NoGlobal leaves the global tracer provider, meter provider, propagator
	// and error handler alone. False installs them, which is what
	// instrumentation that reads the globals (otelgin, redisotel) needs.
	NoGlobal bool
}

// Provider holds the tracer and meter providers Setup built.
type Provider struct {
	tp       *sdktrace.TracerProvider
	mp       *sdkmetric.MeterProvider
	reg      *prometheus.Registry
	metrics  http.Handler
	exporter string
}

// Setup builds tracing and metrics from opts and the OTEL_* environment. Tracing is off unless an exporter is chosen, but spans still carry
// trace ids (so AuditEvents and responses can name them). Every exporter is
// wrapped by NewRedactingExporter and every metric stream filtered by Keep.
// The propagator is W3C trace context plus baggage, where only allow-listed
// baggage members pass in either direction.
func Setup(ctx context.Context, opts Options) (*Provider, error) {
	env := environ(opts.Environ)
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	stdout := opts.Stdout
	if stdout == nil {
		stdout = os.Stdout
	}

	res, err := newResource(ctx, opts.ServiceName, opts.ServiceVersion)
	if err != nil {
		return nil, err
	}

	exp, name := opts.TraceExporter, ExporterCustom
	if exp == nil {
		exp, name, err = newTraceExporter(ctx, opts, env, stdout)
		if err != nil {
			return nil, err
		}
	}
	tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if exp != nil {
		if opts.SyncExport {
			tpOpts = append(tpOpts, sdktrace.WithSyncer(NewRedactingExporter(exp)))
		} else {
			tpOpts = append(tpOpts, sdktrace.WithBatcher(NewRedactingExporter(exp)))
		}
	}
	if sampler := newSampler(opts.Sampler, env, exp != nil); sampler != nil {
		tpOpts = append(tpOpts, sdktrace.WithSampler(sampler))
	}
	tp := sdktrace.NewTracerProvider(tpOpts...)

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	promExp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		_ = tp.Shutdown(ctx)
		return nil, fmt.Errorf("telemetry: prometheus exporter: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithResource(res),
		sdkmetric.WithReader(promExp),
		sdkmetric.WithView(sdkmetric.NewView(
			sdkmetric.Instrument{Name: "*"},
			sdkmetric.Stream{AttributeFilter: Keep},
		)),
		// Exemplars would carry the attributes the filter removed.
		sdkmetric.WithExemplarFilter(exemplar.AlwaysOffFilter),
	)
	p := &Provider{
		tp:       tp,
		mp:       mp,
		reg:      reg,
		metrics:  promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		exporter: name,
	}
	if !opts.NoGlobal {
		otel.SetTracerProvider(tp)
		otel.SetMeterProvider(mp)
		otel.SetTextMapPropagator(Propagator())
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			logger.Warn("telemetry export failed", slog.String(string(AttrErrorType), ErrorType(err)))
		}))
	}
	return p, nil
}

// TracerProvider returns the tracer provider, for instrumentation options
// (otelgin.WithTracerProvider, redisotel.WithTracerProvider).
func (p *Provider) TracerProvider() trace.TracerProvider { return p.tp }

// MeterProvider returns the meter provider.
func (p *Provider) MeterProvider() metric.MeterProvider { return p.mp }

// Exporter names the trace exporter in use: ExporterNone, ExporterConsole,
// ExporterOTLP or ExporterCustom.
func (p *Provider) Exporter() string { return p.exporter }

// MetricsHandler serves the metrics in Prometheus text format from a
// registry of the provider's own (Go and process collectors included), for
// GET /metrics.
func (p *Provider) MetricsHandler() http.Handler { return p.metrics }

// Shutdown flushes and stops tracing and metrics. It is safe to call more
// than once.
func (p *Provider) Shutdown(ctx context.Context) error {
	var errs []error
	if err := p.tp.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("telemetry: tracer shutdown: %w", err))
	}
	if err := p.mp.Shutdown(ctx); err != nil && !errors.Is(err, sdkmetric.ErrReaderShutdown) {
		errs = append(errs, fmt.Errorf("telemetry: meter shutdown: %w", err))
	}
	return errors.Join(errs...)
}

// Tracer returns a tracer from the global provider (installed by Setup), for
// the gateway's own spans: telemetry.Tracer("github.com/migrant-health/mhg/gateway/authz").
func Tracer(name string) trace.Tracer { return otel.Tracer(name) }

// Propagator returns the gateway's propagator: W3C trace context, and W3C
// baggage restricted to allow-listed members, so that neither a client's
// baggage nor the gateway's own can carry patient data to a national source.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, safeBaggage{})
}

// safeBaggage is the W3C baggage propagator with the allow-list applied on
// both extract and inject.
type safeBaggage struct{}

var _ propagation.TextMapPropagator = safeBaggage{}

func (safeBaggage) Inject(ctx context.Context, carrier propagation.TextMapCarrier) {
	b := baggage.FromContext(ctx)
	propagation.Baggage{}.Inject(baggage.ContextWithBaggage(ctx, filterBaggage(b)), carrier)
}

func (safeBaggage) Extract(ctx context.Context, carrier propagation.TextMapCarrier) context.Context {
	ctx = propagation.Baggage{}.Extract(ctx, carrier)
	return baggage.ContextWithBaggage(ctx, filterBaggage(baggage.FromContext(ctx)))
}

func (safeBaggage) Fields() []string { return propagation.Baggage{}.Fields() }

func filterBaggage(b baggage.Baggage) baggage.Baggage {
	for _, m := range b.Members() {
		if !Keep(attribute.String(m.Key(), m.Value())) {
			b = b.DeleteMember(m.Key())
		}
	}
	return b
}

func newResource(ctx context.Context, service, version string) (*resource.Resource, error) {
	if service == "" {
		service = "mhg"
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", service)}
	if version != "" {
		attrs = append(attrs, attribute.String("service.version", version))
	}
	// FromEnv comes last so OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
	// win over Options, as operators expect.
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(attrs...),
		resource.WithFromEnv(),
	)
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	return res, nil
}

// newSampler returns the sampler, or nil to let the SDK read
// OTEL_TRACES_SAMPLER itself. With no exporter nothing is recorded, but
// trace ids are still made and continued from an incoming traceparent.
func newSampler(sampler sdktrace.Sampler, env func(string) string, exporting bool) sdktrace.Sampler {
	switch {
	case !exporting:
		return sdktrace.NeverSample()
	case env("OTEL_TRACES_SAMPLER") != "":
		return nil
	case sampler == nil:
		return sdktrace.ParentBased(sdktrace.AlwaysSample())
	}
	return sampler
}

// RatioSampler samples the share ratio (0..1) of the traces that start at
// the gateway and follows the caller's decision for the others (parent
// based), for Options.Sampler. A ratio outside 0..1 is an error wrapping
// ErrConfig.
func RatioSampler(ratio float64) (sdktrace.Sampler, error) {
	if ratio < 0 || ratio > 1 {
		return nil, fmt.Errorf("%w: sample ratio %v, want 0..1", ErrConfig, ratio)
	}
	return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), nil
}

func environ(list []string) func(string) string {
	if list == nil {
		return os.Getenv
	}
	m := make(map[string]string, len(list))
	for _, kv := range list {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return func(k string) string { return m[k] }
}
