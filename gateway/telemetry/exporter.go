package telemetry

import (
	"context"
	"fmt"
	"io"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// OTLP protocols, as OTEL_EXPORTER_OTLP_PROTOCOL spells them.
const (
	ProtocolGRPC = "grpc"
	ProtocolHTTP = "http/protobuf"
)

// newTraceExporter chooses the exporter the way the contrib autoexport
// package does (OTEL_TRACES_EXPORTER, then OTEL_EXPORTER_OTLP_TRACES_PROTOCOL
// and OTEL_EXPORTER_OTLP_PROTOCOL), with opts as the fallback for each
// variable and "none" as the final default. It returns a nil exporter for
// "none". It does not use autoexport itself because autoexport reads only
// the process environment and defaults to otlp, where the gateway must
// default to off and be testable with a given environment.
func newTraceExporter(ctx context.Context, opts Options, env func(string) string, stdout io.Writer) (sdktrace.SpanExporter, string, error) {
	name := strings.TrimSpace(env("OTEL_TRACES_EXPORTER"))
	if name == "" {
		name = opts.Exporter
	}
	if name == "" {
		name = ExporterNone
	}
	switch name {
	case ExporterNone:
		return nil, ExporterNone, nil
	case ExporterConsole:
		exp, err := stdouttrace.New(stdouttrace.WithWriter(stdout))
		if err != nil {
			return nil, "", fmt.Errorf("telemetry: console exporter: %w", err)
		}
		return exp, ExporterConsole, nil
	case ExporterOTLP:
		exp, err := newOTLP(ctx, opts, env)
		if err != nil {
			return nil, "", err
		}
		return exp, ExporterOTLP, nil
	default:
		return nil, "", fmt.Errorf("%w: traces exporter %q, want none, console or otlp", ErrConfig, name)
	}
}

func newOTLP(ctx context.Context, o Options, env func(string) string) (sdktrace.SpanExporter, error) {
	proto := env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = env("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if proto == "" {
		proto = o.OTLPProtocol
	}
	if proto == "" {
		proto = ProtocolHTTP
	}
	// The exporters read OTEL_EXPORTER_OTLP_*ENDPOINT themselves;
	// OTLPEndpoint only fills in when the environment says nothing.
	endpoint := ""
	if env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" && env("OTEL_EXPORTER_OTLP_ENDPOINT") == "" {
		endpoint = o.OTLPEndpoint
	}
	switch proto {
	case ProtocolGRPC:
		var opts []otlptracegrpc.Option
		if endpoint != "" {
			if strings.Contains(endpoint, "://") {
				opts = append(opts, otlptracegrpc.WithEndpointURL(endpoint))
			} else {
				opts = append(opts, otlptracegrpc.WithEndpoint(endpoint))
			}
		}
		exp, err := otlptracegrpc.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("telemetry: otlp grpc exporter: %w", err)
		}
		return exp, nil
	case ProtocolHTTP:
		var opts []otlptracehttp.Option
		if endpoint != "" {
			if strings.Contains(endpoint, "://") {
				// Like OTEL_EXPORTER_OTLP_ENDPOINT, OTLPEndpoint is a
				// base URL to which the signal path is appended.
				opts = append(opts, otlptracehttp.WithEndpointURL(strings.TrimSuffix(endpoint, "/")+"/v1/traces"))
			} else {
				opts = append(opts, otlptracehttp.WithEndpoint(endpoint))
			}
		}
		exp, err := otlptracehttp.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("telemetry: otlp http exporter: %w", err)
		}
		return exp, nil
	default:
		return nil, fmt.Errorf("%w: otlp protocol %q, want grpc or http/protobuf", ErrConfig, proto)
	}
}
