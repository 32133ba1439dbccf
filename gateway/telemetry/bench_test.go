package telemetry_test

import (
	"context"
	"io"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/migrant-health/mhg/gateway/telemetry"
)

// benchSpans is a batch shaped like one gateway request: an otelgin server
// span with its usual attributes (some of which the allow-list drops) and
// the gateway's own child spans.
func benchSpans() []sdktrace.ReadOnlySpan {
	now := time.Now()
	server := tracetest.SpanStub{
		Name: "GET /fhir/Patient/:id", StartTime: now, EndTime: now.Add(time.Millisecond),
		Attributes: []attribute.KeyValue{
			attribute.String("server.address", "gateway.example"),
			attribute.String("http.request.method", "GET"),
			attribute.String("url.scheme", "http"),
			attribute.String("network.peer.address", "10.0.0.7"),
			attribute.Int("network.peer.port", 53412),
			attribute.String("user_agent.original", "hospital-ehr/2.1"),
			attribute.String("client.address", "10.0.0.7"),
			attribute.String("url.path", "/fhir/Patient/fa470b46"),
			attribute.String("network.protocol.version", "1.1"),
			attribute.String("http.route", "/fhir/Patient/:id"),
			attribute.Int("http.response.status_code", 200),
			attribute.Int("http.response.body.size", 5120),
		},
	}
	child := func(name string, kv ...attribute.KeyValue) tracetest.SpanStub {
		return tracetest.SpanStub{Name: name, StartTime: now, EndTime: now.Add(100 * time.Microsecond), Attributes: kv}
	}
	stubs := tracetest.SpanStubs{
		server,
		child(telemetry.SpanAuthzDecide, telemetry.AttrPhase.String("query"), telemetry.AttrDecision.String("allow"),
			telemetry.AttrRuleIDs.StringSlice([]string{"agreement.permit"}), telemetry.AttrPolicyRevision.String("r42")),
		child(telemetry.SpanCacheGet, telemetry.AttrCacheKind.String("res"), telemetry.AttrCacheHit.Bool(true)),
		child(telemetry.SpanSourceFetch, telemetry.AttrSourceID.String("de-sample"), telemetry.AttrCount.Int(12)),
		child(telemetry.SpanMappingApply, telemetry.AttrProfile.String("de-basis"), telemetry.AttrMappingIssues.Int(2)),
		child(telemetry.SpanAuthzDecide, telemetry.AttrPhase.String("release"), telemetry.AttrDecision.String("allow")),
		child(telemetry.SpanAuditWrite, telemetry.AttrAuditSeq.Int(1001)),
	}
	return stubs.Snapshots()
}

// BenchmarkExport compares span export through the allow-list wrapper with
// the same exporter bare, for a no-op exporter (the wrapper's own cost) and
// for the console exporter (a real encoder, as the OTLP exporter is).
func BenchmarkExport(b *testing.B) {
	spans := benchSpans()
	ctx := context.Background()
	console := func() sdktrace.SpanExporter {
		e, err := stdouttrace.New(stdouttrace.WithWriter(io.Discard))
		if err != nil {
			b.Fatal(err)
		}
		return e
	}
	cases := []struct {
		name string
		exp  sdktrace.SpanExporter
	}{
		{"noop/bare", tracetest.NewNoopExporter()},
		{"noop/redacting", telemetry.NewRedactingExporter(tracetest.NewNoopExporter())},
		{"console/bare", console()},
		{"console/redacting", telemetry.NewRedactingExporter(console())},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := c.exp.ExportSpans(ctx, spans); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
