package telemetry

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Log keys the handler adds or rewrites. They are outside the attribute
// allow-list because only the handler itself writes them.
const (
	// LogTraceID and LogSpanID carry the span context of the record's
	// context, so a log line leads to its trace.
	LogTraceID = "trace_id"
	LogSpanID  = "span_id"
	// LogError is the key under which errors are logged (slog.Any("error",
	// err)); see LogSafeError for what is printed.
	LogError = "error"
)

// NewLogHandler wraps next so that every record carries only allow-listed
// attributes (see Keep), plus trace_id and span_id from the record's
// context. Groups are flattened into dotted keys ("mhg" + "source.id" is
// checked as "mhg.source.id"), so the allow-list sees the key a reader
// sees. Errors logged under "error" are printed through LogSafeError, or as
// error.type only. Times are dropped (a time attribute may be a birth
// date). The message itself is not inspected: messages are constant strings
// by convention, and the PHI scan in tests holds the code to it.
func NewLogHandler(next slog.Handler) slog.Handler {
	return &logHandler{next: next}
}

var _ slog.Handler = (*logHandler)(nil)

type logHandler struct {
	next   slog.Handler
	prefix string
}

func (h *logHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		out.AddAttrs(
			slog.String(LogTraceID, sc.TraceID().String()),
			slog.String(LogSpanID, sc.SpanID().String()),
		)
	}
	var attrs []slog.Attr
	r.Attrs(func(a slog.Attr) bool {
		attrs = appendSafe(attrs, h.prefix, a)
		return true
	})
	out.AddAttrs(attrs...)
	return h.next.Handle(ctx, out)
}

func (h *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	var attrs []slog.Attr
	for _, a := range as {
		attrs = appendSafe(attrs, h.prefix, a)
	}
	return &logHandler{next: h.next.WithAttrs(attrs), prefix: h.prefix}
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &logHandler{next: h.next, prefix: h.prefix + name + "."}
}

// appendSafe appends a, flattened under prefix, if the allow-list keeps it.
func appendSafe(dst []slog.Attr, prefix string, a slog.Attr) []slog.Attr {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p = prefix + a.Key + "."
		}
		for _, g := range v.Group() {
			dst = appendSafe(dst, p, g)
		}
		return dst
	}
	key := prefix + a.Key
	if key == LogError {
		if err, ok := v.Any().(error); ok {
			var safe LogSafeError
			if errors.As(err, &safe) {
				dst = append(dst, slog.String(LogError, safe.LogMessage()))
			}
			return append(dst, slog.String(string(AttrErrorType), ErrorType(err)))
		}
		return dst
	}
	kv, ok := toAttribute(attribute.Key(key), v)
	if !ok || !Keep(kv) {
		return dst
	}
	if v.Kind() == slog.KindDuration {
		v = slog.Float64Value(kv.Value.AsFloat64())
	}
	return append(dst, slog.Attr{Key: key, Value: v})
}

// toAttribute converts a log value to the attribute the allow-list judges.
func toAttribute(k attribute.Key, v slog.Value) (attribute.KeyValue, bool) {
	switch v.Kind() {
	case slog.KindString:
		return k.String(v.String()), true
	case slog.KindInt64:
		return k.Int64(v.Int64()), true
	case slog.KindUint64:
		if u := v.Uint64(); u <= math.MaxInt64 {
			return k.Int64(int64(u)), true
		}
	case slog.KindFloat64:
		return k.Float64(v.Float64()), true
	case slog.KindBool:
		return k.Bool(v.Bool()), true
	case slog.KindDuration:
		return k.Float64(float64(v.Duration()) / float64(time.Millisecond)), true
	case slog.KindAny:
		switch x := v.Any().(type) {
		case []string:
			return k.StringSlice(x), true
		case int:
			return k.Int(x), true
		}
	}
	return attribute.KeyValue{}, false
}
