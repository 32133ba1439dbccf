package telemetrytest_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/migrant-health/mhg/gateway/telemetry"
	"github.com/migrant-health/mhg/gateway/telemetry/telemetrytest"
)

func fixtureNeedles(t *testing.T) []string {
	t.Helper()
	var docs [][]byte
	for _, f := range []string{"patient-example.json", "synthea-blair-conroy-patient.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, b)
	}
	n, err := telemetrytest.Needles(docs...)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestNeedles(t *testing.T) {
	got := fixtureNeedles(t)
	for _, want := range []string{
		"Chalmers", "Peter", "James", "1974-12-25", "12345", "534 Erewhon St", "PleasantVille", "3999", "(03) 5555 6473",
		"Conroy", "Blair", "1975-10-26", "999-70-9491", "S99985920", "X39499066X", "656 Connelly Bridge Unit 95",
		"Somerville", "02138", "555-222-8465", "fa470b46-b649-4f03-a9e5-c2e3f483524c", "8de41d0d-0ae7-4cb6-97e2-900b07a1e4f7",
		"example",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("Needles lacks %q", want)
		}
	}
	for _, n := range got {
		if len(n) < telemetrytest.MinNeedle {
			t.Errorf("needle %q is shorter than MinNeedle", n)
		}
	}
	// The Condition's codes are not PHI needles.
	if slices.Contains(got, "Hypertension") {
		t.Error("Needles took a Condition's text")
	}
	if _, err := telemetrytest.Needles([]byte("{not json")); err == nil {
		t.Error("Needles accepted invalid JSON")
	}
}

func TestScanForPHI(t *testing.T) {
	needles := []string{"Maria Lopez", "1980-01-02", "8de41d0d", "MX", ""}
	tests := []struct {
		name    string
		spans   tracetest.SpanStubs
		logs    string
		metrics string
		where   []string
	}{
		{
			name:  "clean",
			spans: tracetest.SpanStubs{{Name: "authz.decide", Attributes: []attribute.KeyValue{attribute.String("mhg.source.id", "de-sample")}}},
			logs:  `{"time":"1980-01-02T00:00:00Z","msg":"ok","mhg.source.id":"de-sample"}` + "\n",
			metrics: "# HELP x y\n" +
				`mhg_source_requests_total{mhg_source_id="de-sample"} 80` + "\n",
		},
		{
			name:  "span attribute",
			spans: tracetest.SpanStubs{{Name: "x", Attributes: []attribute.KeyValue{attribute.String("patient.name", "maria lopez")}}},
			where: []string{`span "x" attribute patient.name`},
		},
		{
			name:  "span name",
			spans: tracetest.SpanStubs{{Name: "GET /fhir/Patient/8de41d0d"}},
			where: []string{`span "GET /fhir/Patient/8de41d0d" name`},
		},
		{
			name: "event attribute and link attribute",
			spans: tracetest.SpanStubs{{
				Name:   "x",
				Events: []sdktrace.Event{{Name: "exception", Attributes: []attribute.KeyValue{attribute.String("exception.message", "born 1980-01-02")}}},
				Links:  []sdktrace.Link{{Attributes: []attribute.KeyValue{attribute.String("p", "8de41d0d")}}},
			}},
			where: []string{`span "x" event exception attribute exception.message`, `span "x" link attribute p`},
		},
		{
			name:  "log line",
			logs:  "{\"time\":\"t\",\"msg\":\"fetched Maria Lopez\"}\nnot json 8de41d0d\n",
			where: []string{"log line 1 key msg", "log line 2"},
		},
		{
			name:    "metric label",
			metrics: `x_total{who="Maria Lopez"} 1` + "\n" + `y_total 801980` + "\n",
			where:   []string{"metrics line 1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			found := telemetrytest.ScanForPHI(tc.spans, []byte(tc.logs), []byte(tc.metrics), needles)
			var where []string
			for _, f := range found {
				where = append(where, f.Where)
				if f.String() == "" {
					t.Error("empty Finding.String")
				}
			}
			if len(where) != len(tc.where) {
				t.Fatalf("findings %v, want places %v", found, tc.where)
			}
			for i := range where {
				if where[i] != tc.where[i] {
					t.Errorf("finding %d at %q, want %q", i, where[i], tc.where[i])
				}
			}
		})
	}
}

// session writes what a well-behaved request leaves in telemetry.
func session(h *telemetrytest.Harness) {
	ctx := context.Background()
	tr := h.Provider.TracerProvider().Tracer("session")
	ctx, root := tr.Start(ctx, "GET /fhir/Patient/:id", trace.WithAttributes(
		telemetry.AttrHTTPRoute.String("/fhir/Patient/:id"),
		attribute.String("url.path", "/fhir/Patient/fa470b46-b649-4f03-a9e5-c2e3f483524c"),
	))
	_, dec := tr.Start(ctx, telemetry.SpanAuthzDecide, trace.WithAttributes(
		telemetry.AttrDecision.String("allow"), telemetry.AttrRuleIDs.StringSlice([]string{"consent.permit"}),
	))
	dec.End()
	h.Logger.InfoContext(ctx, "decided", slog.String("patient.family", "Conroy"), slog.String(string(telemetry.AttrPhase), "release"))
	decisions, _ := h.Provider.MeterProvider().Meter("session").Int64Counter("mhg.authz.decisions")
	decisions.Add(ctx, 1, metric.WithAttributes(telemetry.AttrPhase.String("release"), telemetry.AttrDecision.String("allow")))
	root.End()
}

func TestHarnessCleanSession(t *testing.T) {
	telemetry.AllowRoutes("GET /fhir/Patient/:id")
	h := telemetrytest.New(t, telemetrytest.Options{})
	session(h)
	rec := &recordingTB{TB: t}
	h.RequireNoPHI(rec, fixtureNeedles(t))
	if rec.failed {
		t.Errorf("a clean session failed the scan: %v", rec.msgs)
	}
	if n := len(h.Spans.GetSpans()); n != 2 {
		t.Errorf("spans = %d, want 2", n)
	}
	if !strings.Contains(string(h.Logs()), `"trace_id"`) {
		t.Errorf("log lacks trace_id: %s", h.Logs())
	}
}

// TestHarnessCatchesPHIAddedOnPurpose puts patient data where the allow-list
// cannot see it (an allowed key with a value of the allowed shape, a log
// message, a metric label) and expects the scan to fail the test.
func TestHarnessCatchesPHIAddedOnPurpose(t *testing.T) {
	needles := fixtureNeedles(t)
	tests := []struct {
		name  string
		leak  func(h *telemetrytest.Harness)
		where string
	}{
		{
			name: "span attribute",
			leak: func(h *telemetrytest.Harness) {
				_, s := h.Provider.TracerProvider().Tracer("t").Start(context.Background(), telemetry.SpanSourceFetch)
				s.SetAttributes(telemetry.AttrSourceID.String("conroy"))
				s.End()
			},
			where: `span "source.fetch" attribute mhg.source.id`,
		},
		{
			name: "log message",
			leak: func(h *telemetrytest.Harness) {
				h.Logger.Info(fmt.Sprintf("fetched %s", "Blair Conroy"))
			},
			where: "log line 2 key msg",
		},
		{
			name: "metric label",
			leak: func(h *telemetrytest.Harness) {
				c, _ := h.Provider.MeterProvider().Meter("t").Int64Counter("leak")
				c.Add(context.Background(), 1, metric.WithAttributes(telemetry.AttrCacheKind.String("somerville")))
			},
			where: "metrics line",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := telemetrytest.New(t, telemetrytest.Options{})
			session(h)
			tc.leak(h)
			rec := &recordingTB{TB: t}
			h.RequireNoPHI(rec, needles)
			if !rec.failed {
				t.Fatal("RequireNoPHI passed although patient data was added on purpose")
			}
			if !strings.Contains(strings.Join(rec.msgs, "\n"), tc.where) {
				t.Errorf("failure does not name %q: %v", tc.where, rec.msgs)
			}
		})
	}
}

func TestRequireNoPHIFailsOnNothing(t *testing.T) {
	h := telemetrytest.New(t, telemetrytest.Options{})
	rec := &recordingTB{TB: t}
	h.RequireNoPHI(rec, []string{"Conroy"})
	if !rec.failed {
		t.Error("RequireNoPHI passed with no spans at all")
	}
}

// recordingTB records failures instead of failing the real test.
type recordingTB struct {
	testing.TB
	failed bool
	msgs   []string
}

func (r *recordingTB) Helper() {}
func (r *recordingTB) Errorf(format string, args ...any) {
	r.failed = true
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}
func (r *recordingTB) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	r.TB.FailNow()
}
