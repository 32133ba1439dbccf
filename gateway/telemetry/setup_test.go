package telemetry_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/migrant-health/mhg/gateway/telemetry"
)

func setup(t *testing.T, opts telemetry.Options) *telemetry.Provider {
	t.Helper()
	opts.NoGlobal = true
	p, err := telemetry.Setup(context.Background(), opts)
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return p
}

func TestSetupExporterChoice(t *testing.T) {
	tests := []struct {
		name    string
		cfg     string
		environ []string
		want    string
		wantErr error
	}{
		{"default is off", "", []string{}, telemetry.ExporterNone, nil},
		{"config none", "none", []string{}, telemetry.ExporterNone, nil},
		{"config console", "console", []string{}, telemetry.ExporterConsole, nil},
		{"env wins over config", "console", []string{"OTEL_TRACES_EXPORTER=none"}, telemetry.ExporterNone, nil},
		{"env otlp grpc", "none", []string{"OTEL_TRACES_EXPORTER=otlp", "OTEL_EXPORTER_OTLP_PROTOCOL=grpc"}, telemetry.ExporterOTLP, nil},
		{"env otlp http", "", []string{"OTEL_TRACES_EXPORTER=otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/protobuf"}, telemetry.ExporterOTLP, nil},
		{"unknown exporter", "zipkin", []string{}, "", telemetry.ErrConfig},
		{"unknown protocol", "otlp", []string{"OTEL_EXPORTER_OTLP_PROTOCOL=http/json"}, "", telemetry.ErrConfig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := telemetry.Setup(context.Background(), telemetry.Options{ServiceName: "mhg-test", Exporter: tc.cfg, OTLPEndpoint: "http://127.0.0.1:1",
				Environ: tc.environ, Stdout: io.Discard, NoGlobal: true})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Setup error = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Setup: %v", err)
			}
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				_ = p.Shutdown(ctx)
			}()
			if p.Exporter() != tc.want {
				t.Errorf("Exporter() = %q, want %q", p.Exporter(), tc.want)
			}
		})
	}
}

func TestNoneStillMakesTraceIDs(t *testing.T) {
	p := setup(t, telemetry.Options{Exporter: "none", Environ: []string{}})
	parent := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{9, 9}, SpanID: trace.SpanID{1}, Remote: true})
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), parent)
	_, span := p.TracerProvider().Tracer("t").Start(ctx, telemetry.SpanAuthzDecide)
	defer span.End()
	sc := span.SpanContext()
	if !sc.IsValid() || sc.TraceID() != parent.TraceID() {
		t.Errorf("span context %v, want a valid one continuing trace %v", sc, parent.TraceID())
	}
	if span.IsRecording() {
		t.Error("span records although no exporter is configured")
	}
}

func TestConsoleExporterIsRedacted(t *testing.T) {
	var out syncBuf
	p := setup(t, telemetry.Options{Exporter: "console", Environ: []string{}, Stdout: &out, SyncExport: true})
	_, span := p.TracerProvider().Tracer("t").Start(context.Background(), "GET /fhir/Patient/8de41d0d")
	span.SetAttributes(attribute.String("patient.name", "Maria Lopez"), telemetry.AttrSourceID.String("de-sample"))
	span.End()
	got := out.String()
	if !strings.Contains(got, `"Name":"GET"`) || !strings.Contains(got, "de-sample") {
		t.Errorf("console output lacks the redacted span: %s", got)
	}
	for _, phi := range []string{"Maria", "8de41d0d", "patient.name"} {
		if strings.Contains(got, phi) {
			t.Errorf("console output holds %q: %s", phi, got)
		}
	}
}

// TestOTLPHTTPIsRedacted sends a span over OTLP/HTTP to a fake collector and
// checks the protobuf that arrives.
func TestOTLPHTTPIsRedacted(t *testing.T) {
	var (
		mu   sync.Mutex
		reqs []*coltrace.ExportTraceServiceRequest
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" {
			t.Errorf("collector got path %q, want /v1/traces", r.URL.Path)
		}
		body, _ := io.ReadAll(r.Body)
		var req coltrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			t.Errorf("collector: %v", err)
		}
		mu.Lock()
		reqs = append(reqs, &req)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		b, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		_, _ = w.Write(b)
	}))
	t.Cleanup(srv.Close)

	p := setup(t, telemetry.Options{ServiceName: "mhg-test", Exporter: "otlp", OTLPProtocol: "http/protobuf", OTLPEndpoint: srv.URL, Environ: []string{}})
	_, span := p.TracerProvider().Tracer("t").Start(context.Background(), telemetry.SpanSourceFetch)
	span.SetAttributes(attribute.String("url.query", "name=Lopez"), telemetry.AttrSourceID.String("nl-sample"))
	span.End()
	flusher, ok := p.TracerProvider().(interface{ ForceFlush(context.Context) error })
	if !ok {
		t.Fatal("the tracer provider cannot flush")
	}
	if err := flusher.ForceFlush(context.Background()); err != nil {
		t.Fatalf("flush: %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(reqs) == 0 {
		t.Fatal("collector received nothing")
	}
	var names []string
	for _, rs := range reqs[0].GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				names = append(names, s.GetName())
				keys := map[string]string{}
				for _, kv := range s.GetAttributes() {
					keys[kv.GetKey()] = kv.GetValue().GetStringValue()
				}
				if _, ok := keys["url.query"]; ok {
					t.Errorf("url.query reached the collector: %v", keys)
				}
				if keys["mhg.source.id"] != "nl-sample" {
					t.Errorf("mhg.source.id lost on the way: %v", keys)
				}
			}
		}
	}
	if len(names) != 1 || names[0] != telemetry.SpanSourceFetch {
		t.Errorf("collector got spans %v, want [source.fetch]", names)
	}
}

func TestMetricsAreFiltered(t *testing.T) {
	p := setup(t, telemetry.Options{Environ: []string{}})
	ctx := context.Background()
	c, err := p.MeterProvider().Meter("t").Int64Counter("test.requests")
	if err != nil {
		t.Fatal(err)
	}
	c.Add(ctx, 1, metric.WithAttributes(
		attribute.String("patient.id", "8de41d0d"),
		attribute.String("url.path", "/fhir/Patient/8de41d0d"),
		telemetry.AttrHTTPRoute.String("/fhir/Patient/:id"),
		telemetry.AttrHTTPStatus.Int(200),
	))

	rec := httptest.NewRecorder()
	p.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`test_requests_total{http_response_status_code="200",http_route="/fhir/Patient/:id"`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, phi := range []string{"8de41d0d", "patient_id", "url_path"} {
		if strings.Contains(body, phi) {
			t.Errorf("metrics hold %q", phi)
		}
	}
}

func TestPropagatorFiltersBaggage(t *testing.T) {
	prop := telemetry.Propagator()
	in := http.Header{}
	in.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	in.Set("baggage", "patient.id=8de41d0d,mhg.purpose=TREAT,user=Lopez")
	ctx := prop.Extract(context.Background(), propagation.HeaderCarrier(in))

	if sc := trace.SpanContextFromContext(ctx); sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("trace id %s not extracted", sc.TraceID())
	}
	b := baggage.FromContext(ctx)
	if b.Len() != 1 || b.Member("mhg.purpose").Value() != "TREAT" {
		t.Errorf("extracted baggage %q, want mhg.purpose=TREAT only", b.String())
	}

	m, _ := baggage.NewMember("patient.name", "Lopez")
	b2, _ := b.SetMember(m)
	out := http.Header{}
	prop.Inject(baggage.ContextWithBaggage(ctx, b2), propagation.HeaderCarrier(out))
	if got := out.Get("baggage"); got != "mhg.purpose=TREAT" {
		t.Errorf("injected baggage %q, want mhg.purpose=TREAT", got)
	}
	if !strings.HasPrefix(out.Get("traceparent"), "00-4bf92f3577b34da6a3ce929d0e0e4736-") {
		t.Errorf("traceparent %q not propagated", out.Get("traceparent"))
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestSampler(t *testing.T) {
	if _, err := telemetry.RatioSampler(1.5); !errors.Is(err, telemetry.ErrConfig) {
		t.Fatalf("RatioSampler(1.5) error = %v, want ErrConfig", err)
	}
	none, err := telemetry.RatioSampler(0)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		sampler sdktrace.Sampler
		environ []string
		want    bool
	}{
		{"nil samples every trace", nil, []string{}, true},
		{"ratio 0 samples no root trace", none, []string{}, false},
		{"OTEL_TRACES_SAMPLER replaces the sampler", none, []string{"OTEL_TRACES_SAMPLER=always_on"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := setup(t, telemetry.Options{Exporter: "console", Stdout: io.Discard, Sampler: tc.sampler, Environ: tc.environ})
			_, span := p.TracerProvider().Tracer("t").Start(context.Background(), telemetry.SpanAuthzDecide)
			defer span.End()
			if span.IsRecording() != tc.want {
				t.Errorf("recording = %v, want %v", span.IsRecording(), tc.want)
			}
		})
	}
}
