// Package telemetry sets up OpenTelemetry tracing and metrics for the
// gateway and holds the one attribute allow-list that keeps patient data out
// of them.
//
// Setup builds, from its Options and the OTEL_* environment, the tracer
// provider (exporter from OTEL_TRACES_EXPORTER or Options.Exporter: none,
// console or otlp over gRPC or HTTP; parent-based ratio sampling through
// RatioSampler; off by default, yet every request still gets a trace id), the
// meter provider (read by a Prometheus exporter on a private registry,
// served by Provider.MetricsHandler) and the W3C trace-context and baggage
// propagator. Everything that leaves the process passes the allow-list:
// NewRedactingExporter drops span, event and link attributes whose key is
// not allow-listed or whose value has the wrong shape, replaces span names
// that are not known names or registered route templates (AllowRoutes) and
// clears status descriptions; a metric view applies Keep to every metric
// attribute; NewLogHandler does the same for slog records and adds trace_id
// and span_id; the propagator lets only allow-listed baggage through.
//
// It does not read the gateway's configuration (the server translates the
// telemetry section into Options), and it does not decide what to trace: the packages that do the work start
// their spans (SpanAuthzDecide, SpanSourceFetch, ...) with the Attr*
// keys and record metrics through Instruments. Package telemetrytest holds
// the PHI scan that tests run over everything exported.
package telemetry
