package telemetry_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/migrant-health/mhg/gateway/telemetry"
	"github.com/migrant-health/mhg/gateway/telemetry/telemetrytest"
)

func init() {
	telemetry.AllowRoutes("GET /fhir/Patient/:id", "/fhir/Patient/:id/$summary", "POST /fhir/Patient")
}

// exportOne runs one span through a Harness and returns what was exported.
func exportOne(t *testing.T, scope, name string, f func(trace.Span)) tracetest.SpanStub {
	t.Helper()
	h := telemetrytest.New(t, telemetrytest.Options{})
	_, span := h.Provider.TracerProvider().Tracer(scope).Start(context.Background(), name)
	f(span)
	span.End()
	spans := h.Spans.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("exported %d spans, want 1", len(spans))
	}
	return spans[0]
}

func attrMap(kvs []attribute.KeyValue) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}

func TestRedactAttributes(t *testing.T) {
	tests := []struct {
		name string
		kv   attribute.KeyValue
		keep bool
	}{
		{"patient name", attribute.String("patient.name", "Maria Lopez"), false},
		{"url query", attribute.String("url.query", "identifier=123&birthdate=1980-01-02"), false},
		{"url path", attribute.String("url.path", "/fhir/Patient/8de41d0d"), false},
		{"http target", attribute.String("http.target", "/fhir/Patient?name=Lopez"), false},
		{"url full", attribute.String("url.full", "http://gw/fhir/Patient/8de41d0d"), false},
		{"db statement", attribute.String("db.statement", "get mhg:res:abc"), false},
		{"user agent", attribute.String("user_agent.original", "curl/8"), false},
		{"client address", attribute.String("client.address", "10.0.0.7"), false},
		{"exception message", attribute.String("exception.message", "no Patient Lopez"), false},
		{"resource type shaped like a reference", telemetry.AttrResourceType.String("Patient/8de41d0d"), false},
		{"source id with upper case", telemetry.AttrSourceID.String("Maria Lopez"), false},
		{"route not registered", telemetry.AttrHTTPRoute.String("/fhir/Patient/8de41d0d"), false},
		{"decision not a verdict", telemetry.AttrDecision.String("maybe"), false},
		{"count as string", telemetry.AttrCount.String("3"), false},
		{"rule ids with a name", telemetry.AttrRuleIDs.StringSlice([]string{"consent.deny", "Maria Lopez"}), false},

		{"source id", telemetry.AttrSourceID.String("de-sample"), true},
		{"decision", telemetry.AttrDecision.String("allow"), true},
		{"rule ids", telemetry.AttrRuleIDs.StringSlice([]string{"consent.permit", "agreement/de-nl"}), true},
		{"policy revision", telemetry.AttrPolicyRevision.String("2026-11-01.3"), true},
		{"count", telemetry.AttrCount.Int(3), true},
		{"cache hit", telemetry.AttrCacheHit.Bool(true), true},
		{"resource type", telemetry.AttrResourceType.String("Observation"), true},
		{"phase", telemetry.AttrPhase.String("release"), true},
		{"breaker", telemetry.AttrBreakerState.String("half-open"), true},
		{"registered route", telemetry.AttrHTTPRoute.String("/fhir/Patient/:id"), true},
		{"method", telemetry.AttrHTTPMethod.String("GET"), true},
		{"status", telemetry.AttrHTTPStatus.Int(200), true},
		{"error type", telemetry.AttrErrorType.String("source.not_found"), true},
		{"purpose", telemetry.AttrPurpose.String("TREAT"), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := telemetry.Keep(tc.kv); got != tc.keep {
				t.Errorf("Keep(%s=%s) = %v, want %v", tc.kv.Key, tc.kv.Value.String(), got, tc.keep)
			}
			s := exportOne(t, "test", telemetry.SpanAuthzDecide, func(s trace.Span) {
				s.SetAttributes(tc.kv, telemetry.AttrComponent.String("test"))
			})
			m := attrMap(s.Attributes)
			if _, ok := m[tc.kv.Key]; ok != tc.keep {
				t.Errorf("exported %s: present = %v, want %v (attributes %v)", tc.kv.Key, ok, tc.keep, s.Attributes)
			}
			if _, ok := m[telemetry.AttrComponent]; !ok {
				t.Errorf("the allowed mhg.component was dropped too: %v", s.Attributes)
			}
			wantDropped := 0
			if !tc.keep {
				wantDropped = 1
			}
			if s.DroppedAttributes != wantDropped {
				t.Errorf("DroppedAttributes = %d, want %d", s.DroppedAttributes, wantDropped)
			}
		})
	}
}

func TestRedactSpanNames(t *testing.T) {
	tests := []struct {
		name, scope, span, want string
	}{
		{"known name", "mhg", telemetry.SpanSourceFetch, telemetry.SpanSourceFetch},
		{"registered route", "otelgin", "GET /fhir/Patient/:id", "GET /fhir/Patient/:id"},
		{"registered for any method", "otelgin", "POST /fhir/Patient/:id/$summary", "POST /fhir/Patient/:id/$summary"},
		{"registered for another method", "otelgin", "DELETE /fhir/Patient", "DELETE"},
		{"raw path", "otelgin", "GET /fhir/Patient/8de41d0d", "GET"},
		{"raw path with query", "otelgin", "GET /fhir/Patient?name=Lopez", "GET"},
		{"otelgin not found", "otelgin", "HTTP GET route not found", "HTTP GET route not found"},
		{"client span", "client", "HTTP GET", "HTTP GET"},
		{"method alone", "client", "GET", "GET"},
		{"free text", "mhg", "lookup Maria Lopez", telemetry.RedactedSpanName},
		{"id", "mhg", "Patient/8de41d0d", telemetry.RedactedSpanName},
		{"redis command", "github.com/redis/go-redis/extra/redisotel", "get", "get"},
		{"redis pipeline", "github.com/redis/go-redis/extra/redisotel", "redis.pipeline get set", "redis.pipeline get set"},
		{"redis-like name from elsewhere", "mhg", "get", telemetry.RedactedSpanName},
		{"redis scope with a key", "github.com/redis/go-redis/extra/redisotel", "get mhg:Lopez", telemetry.RedactedSpanName},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := telemetry.SafeSpanName(tc.span, tc.scope); got != tc.want {
				t.Errorf("SafeSpanName(%q, %q) = %q, want %q", tc.span, tc.scope, got, tc.want)
			}
			s := exportOne(t, tc.scope, tc.span, func(trace.Span) {})
			if s.Name != tc.want {
				t.Errorf("exported name %q, want %q", s.Name, tc.want)
			}
		})
	}
}

func TestRedactEventsLinksStatus(t *testing.T) {
	linked := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled,
	})
	s := exportOne(t, "test", telemetry.SpanSourceFetch, func(s trace.Span) {
		err := errors.New("source de-sample: Patient Maria Lopez born 1980-01-02 not found")
		s.RecordError(err, trace.WithAttributes(telemetry.AttrSourceID.String("de-sample")))
		s.AddEvent("Maria Lopez", trace.WithAttributes(attribute.String("patient.id", "8de41d0d")))
		s.AddEvent(telemetry.EventException, trace.WithAttributes(telemetry.AttrCount.Int(2)))
		s.AddLink(trace.Link{SpanContext: linked, Attributes: []attribute.KeyValue{
			attribute.String("patient.id", "8de41d0d"), telemetry.AttrSourceID.String("nl-sample"),
		}})
		s.SetStatus(codes.Error, err.Error())
	})
	if s.Status.Code != codes.Error || s.Status.Description != "" {
		t.Errorf("status = %+v, want code Error and no description", s.Status)
	}
	if len(s.Events) != 3 {
		t.Fatalf("events = %d, want 3", len(s.Events))
	}
	exc := attrMap(s.Events[0].Attributes)
	if s.Events[0].Name != telemetry.EventException {
		t.Errorf("event 0 name %q, want exception", s.Events[0].Name)
	}
	if _, ok := exc["exception.message"]; ok {
		t.Errorf("exception.message exported: %v", s.Events[0].Attributes)
	}
	if v := exc[telemetry.AttrExceptionType]; v.AsString() != "*errors.errorString" {
		t.Errorf("exception.type = %q, want *errors.errorString", v.AsString())
	}
	if v := exc[telemetry.AttrSourceID]; v.AsString() != "de-sample" {
		t.Errorf("allowed event attribute lost: %v", s.Events[0].Attributes)
	}
	if s.Events[1].Name != telemetry.RedactedEventName || len(s.Events[1].Attributes) != 0 || s.Events[1].DroppedAttributeCount != 1 {
		t.Errorf("event 1 = %+v, want a redacted name, no attributes, 1 dropped", s.Events[1])
	}
	if s.Events[2].Name != telemetry.EventException || len(s.Events[2].Attributes) != 1 {
		t.Errorf("event 2 = %+v, want retry with mhg.count", s.Events[2])
	}
	if len(s.Links) != 1 {
		t.Fatalf("links = %d, want 1", len(s.Links))
	}
	l := s.Links[0]
	if l.SpanContext.TraceID() != linked.TraceID() || len(l.Attributes) != 1 || l.Attributes[0].Key != telemetry.AttrSourceID || l.DroppedAttributeCount != 1 {
		t.Errorf("link = %+v, want the linked context with mhg.source.id only", l)
	}
	found := telemetrytest.ScanForPHI(tracetest.SpanStubs{s}, nil, nil, []string{"Maria Lopez", "1980-01-02", "8de41d0d"})
	if len(found) != 0 {
		t.Errorf("PHI left after redaction: %v", found)
	}
}

func TestRedactingExporterPassesErrors(t *testing.T) {
	boom := errors.New("collector down")
	exp := telemetry.NewRedactingExporter(failingExporter{err: boom})
	err := exp.ExportSpans(context.Background(), tracetest.SpanStubs{{Name: "x"}}.Snapshots())
	if !errors.Is(err, boom) {
		t.Errorf("ExportSpans error = %v, want it to wrap %v", err, boom)
	}
	if err := exp.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

type failingExporter struct{ err error }

func (f failingExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return f.err }
func (f failingExporter) Shutdown(context.Context) error                             { return nil }

func TestErrorType(t *testing.T) {
	sentinel := errors.New("not found")
	if err := telemetry.RegisterErrorType(sentinel, "test.not_found"); err != nil {
		t.Fatal(err)
	}
	if err := telemetry.RegisterErrorType(sentinel, "Maria Lopez"); err == nil {
		t.Error("RegisterErrorType accepted a name with a space")
	}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"sentinel wrapped", fmt.Errorf("source de: Patient Lopez: %w", sentinel), "test.not_found"},
		{"deadline", fmt.Errorf("fetch: %w", context.DeadlineExceeded), "deadline_exceeded"},
		{"canceled", context.Canceled, "canceled"},
		{"typed", fmt.Errorf("x: %w", &typedErr{}), "*telemetry_test.typedErr"},
		{"plain", errors.New("Patient Lopez"), "error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := telemetry.ErrorType(tc.err); got != tc.want {
				t.Errorf("ErrorType = %q, want %q", got, tc.want)
			}
		})
	}
}

type typedErr struct{}

func (*typedErr) Error() string { return "typed Patient Lopez" }
