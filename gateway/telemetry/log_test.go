package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/migrant-health/mhg/gateway/telemetry"
)

type safeErr struct{}

func (safeErr) Error() string      { return "source nl-sample: Patient Maria Lopez: timeout" }
func (safeErr) LogMessage() string { return "source nl-sample: timeout" }

func logOnce(t *testing.T, ctx context.Context, f func(*slog.Logger)) map[string]any {
	t.Helper()
	var buf bytes.Buffer
	l := slog.New(telemetry.NewLogHandler(slog.NewJSONHandler(&buf, nil)))
	f(l)
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("log line %q: %v", buf.String(), err)
	}
	return rec
}

func TestLogHandler(t *testing.T) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x4b, 0xf9, 0x2f, 1}, SpanID: trace.SpanID{0xa3, 2}, TraceFlags: trace.FlagsSampled,
	})
	spanCtx := trace.ContextWithSpanContext(context.Background(), sc)

	tests := []struct {
		name    string
		ctx     context.Context
		log     func(*slog.Logger)
		want    map[string]any
		missing []string
	}{
		{
			name: "PHI attributes dropped, allowed kept",
			ctx:  context.Background(),
			log: func(l *slog.Logger) {
				l.Info("source fetched",
					slog.String("patient.name", "Maria Lopez"),
					slog.String("url.query", "birthdate=1980-01-02"),
					slog.String(string(telemetry.AttrSourceID), "de-sample"),
					slog.Int(string(telemetry.AttrCount), 4),
					slog.Bool(string(telemetry.AttrCacheHit), false),
				)
			},
			want:    map[string]any{"mhg.source.id": "de-sample", "mhg.count": 4.0, "mhg.cache.hit": false, "msg": "source fetched"},
			missing: []string{"patient.name", "url.query", "trace_id", "span_id"},
		},
		{
			name: "trace and span id from the context",
			ctx:  spanCtx,
			log:  func(l *slog.Logger) { l.InfoContext(spanCtx, "x") },
			want: map[string]any{"trace_id": sc.TraceID().String(), "span_id": sc.SpanID().String()},
		},
		{
			name: "groups are flattened and checked as dotted keys",
			ctx:  context.Background(),
			log: func(l *slog.Logger) {
				l.WithGroup("mhg").Info("x",
					slog.String("source.id", "nl-sample"),
					slog.Group("patient", slog.String("name", "Maria Lopez")),
				)
			},
			want:    map[string]any{"mhg.source.id": "nl-sample"},
			missing: []string{"mhg", "mhg.patient.name", "patient"},
		},
		{
			name: "WithAttrs is filtered too",
			ctx:  context.Background(),
			log: func(l *slog.Logger) {
				l.With(slog.String("patient.id", "8de41d0d"), slog.String(string(telemetry.AttrPhase), "query")).Info("x")
			},
			want:    map[string]any{"mhg.phase": "query"},
			missing: []string{"patient.id"},
		},
		{
			name: "allowed key with a value of the wrong shape",
			ctx:  context.Background(),
			log: func(l *slog.Logger) {
				l.Info("x", slog.String(string(telemetry.AttrResourceType), "Patient/8de41d0d"))
			},
			missing: []string{"mhg.resource.type"},
		},
		{
			name: "plain error logged by type only",
			ctx:  context.Background(),
			log: func(l *slog.Logger) {
				l.Error("fetch failed", slog.Any("error", fmt.Errorf("fetch: %w", errors.New("Patient Maria Lopez"))))
			},
			want:    map[string]any{"error.type": "error"},
			missing: []string{"error"},
		},
		{
			name: "log-safe error printed through LogMessage",
			ctx:  context.Background(),
			log: func(l *slog.Logger) {
				l.Error("fetch failed", slog.Any("error", fmt.Errorf("wrapped: %w", safeErr{})))
			},
			want: map[string]any{"error": "source nl-sample: timeout", "error.type": "telemetry_test.safeErr"},
		},
		{
			name: "times dropped, durations in milliseconds",
			ctx:  context.Background(),
			log: func(l *slog.Logger) {
				l.Info("x",
					slog.Time(string(telemetry.AttrDurationMS), time.Date(1980, 1, 2, 0, 0, 0, 0, time.UTC)),
					slog.Duration(string(telemetry.AttrDurationMS), 1500*time.Microsecond),
				)
			},
			want: map[string]any{"mhg.duration_ms": 1.5},
		},
		{
			name: "access log keys of the HTTP layer",
			ctx:  context.Background(),
			log: func(l *slog.Logger) {
				l.Info("request", "method", "GET", "route", "/fhir/Patient/:id", "status", 200, "duration_ms", 1.25,
					"code", "not-found", "timeout", "20s", "message", "Patient Maria Lopez not found")
			},
			want:    map[string]any{"method": "GET", "route": "/fhir/Patient/:id", "status": 200.0, "duration_ms": 1.25, "code": "not-found", "timeout": "20s"},
			missing: []string{"message"},
		},
		{
			name:    "raw path under the route key",
			ctx:     context.Background(),
			log:     func(l *slog.Logger) { l.Info("request", "route", "/fhir/Patient/8de41d0d") },
			missing: []string{"route"},
		},
		{
			name: "rule ids as a string slice",
			ctx:  context.Background(),
			log: func(l *slog.Logger) {
				l.Info("x", slog.Any(string(telemetry.AttrRuleIDs), []string{"consent.permit"}))
			},
			want: map[string]any{"mhg.rule_ids": []any{"consent.permit"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := logOnce(t, tc.ctx, tc.log)
			for k, v := range tc.want {
				got, ok := rec[k]
				if !ok || fmt.Sprint(got) != fmt.Sprint(v) {
					t.Errorf("%s = %v (present %v), want %v; record %v", k, got, ok, v, rec)
				}
			}
			for _, k := range tc.missing {
				if v, ok := rec[k]; ok {
					t.Errorf("%s = %v is in the record, want it dropped; record %v", k, v, rec)
				}
			}
			line, _ := json.Marshal(rec)
			for _, phi := range []string{"Maria", "Lopez", "1980", "8de41d0d"} {
				if strings.Contains(string(line), phi) {
					t.Errorf("record holds %q: %s", phi, line)
				}
			}
		})
	}
}

func TestLogHandlerEnabled(t *testing.T) {
	h := telemetry.NewLogHandler(slog.NewJSONHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if h.Enabled(context.Background(), slog.LevelInfo) {
		t.Error("info enabled under a warn handler")
	}
	if !h.Enabled(context.Background(), slog.LevelError) {
		t.Error("error disabled under a warn handler")
	}
}
