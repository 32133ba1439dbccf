package telemetrytest

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/migrant-health/mhg/gateway/telemetry"
)

// Options tune New. The zero value gives a private (non-global) setup that
// logs at debug level.
type Options struct {
	// Global installs the providers and propagator globally, for code that
	// reads them (otelgin without options, telemetry.Tracer). Tests that
	// set it must not run in parallel with each other.
	Global bool
	// Level is the lowest log level captured. Zero means debug, so that
	// every log line the code can write is scanned.
	Level slog.Level
}

// Harness is telemetry set up for a test: spans go to Spans (synchronously),
// Logger writes JSON through telemetry.NewLogHandler into a buffer, and
// metrics are read from the Provider's Prometheus handler.
type Harness struct {
	Provider *telemetry.Provider
	Spans    *tracetest.InMemoryExporter
	Logger   *slog.Logger
	logs     *syncBuffer
}

// New sets up telemetry for tb and shuts it down when tb ends.
func New(tb testing.TB, opts Options) *Harness {
	tb.Helper()
	h := &Harness{Spans: tracetest.NewInMemoryExporter(), logs: &syncBuffer{}}
	level := opts.Level
	if level == 0 {
		level = slog.LevelDebug
	}
	h.Logger = slog.New(telemetry.NewLogHandler(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: level})))
	// Every trace is sampled (the nil Sampler).
	p, err := telemetry.Setup(context.Background(), telemetry.Options{
		TraceExporter: h.Spans,
		SyncExport:    true,
		Logger:        h.Logger,
		Environ:       []string{},
		Stdout:        io.Discard,
		NoGlobal:      !opts.Global,
	})
	if err != nil {
		tb.Fatalf("telemetry setup: %v", err)
	}
	h.Provider = p
	tb.Cleanup(func() {
		if err := p.Shutdown(context.Background()); err != nil {
			tb.Errorf("telemetry shutdown: %v", err)
		}
	})
	return h
}

// Logs returns the log lines written so far.
func (h *Harness) Logs() []byte { return h.logs.Bytes() }

// Metrics scrapes the Prometheus handler and returns the text exposition.
func (h *Harness) Metrics(tb testing.TB) []byte {
	tb.Helper()
	rec := httptest.NewRecorder()
	h.Provider.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		tb.Fatalf("metrics: status %d: %s", rec.Code, rec.Body.String())
	}
	return rec.Body.Bytes()
}

// Scan searches spans, logs and metrics for needles. Spans are exported
// as they end (SyncExport), so every ended span is there.
func (h *Harness) Scan(tb testing.TB, needles []string) []Finding {
	tb.Helper()
	return ScanForPHI(h.Spans.GetSpans(), h.Logs(), h.Metrics(tb), needles)
}

// RequireNoPHI fails tb, listing every finding, when Scan finds a needle.
// It also fails when nothing at all was captured, since a scan of nothing
// proves nothing.
func (h *Harness) RequireNoPHI(tb testing.TB, needles []string) {
	tb.Helper()
	found := h.Scan(tb, needles)
	if len(h.Spans.GetSpans()) == 0 {
		tb.Errorf("no spans were exported: the PHI scan would prove nothing")
	}
	if len(found) == 0 {
		return
	}
	var b strings.Builder
	for _, f := range found {
		b.WriteString("\n  ")
		b.WriteString(f.String())
	}
	tb.Errorf("telemetry carries patient data (%d findings):%s", len(found), b.String())
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}
