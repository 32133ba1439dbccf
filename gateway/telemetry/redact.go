package telemetry

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// The allow-list is enforced at export rather than at span start: the SDK
// stores the start attributes after consulting the sampler whatever the
// sampler returns, and instrumentation adds attributes, events and a status
// description for the whole life of a span, so only the finished span can
// be checked completely.

// NewRedactingExporter wraps next so that every span it receives has passed
// the allow-list: attributes (of the span, its events and its links) outside
// it are dropped, names that are not known to be safe are replaced (see
// SafeSpanName), and status descriptions, which usually quote an error
// message, are cleared. Setup wraps every trace exporter with it.
func NewRedactingExporter(next sdktrace.SpanExporter) sdktrace.SpanExporter {
	return &redactingExporter{next: next}
}

var _ sdktrace.SpanExporter = (*redactingExporter)(nil)

type redactingExporter struct {
	next sdktrace.SpanExporter
}

func (e *redactingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	out := make([]sdktrace.ReadOnlySpan, len(spans))
	for i, s := range spans {
		out[i] = Redact(s)
	}
	if err := e.next.ExportSpans(ctx, out); err != nil {
		return fmt.Errorf("telemetry: export spans: %w", err)
	}
	return nil
}

func (e *redactingExporter) Shutdown(ctx context.Context) error {
	return e.next.Shutdown(ctx)
}

// Redact returns a view of s that holds only what the allow-list lets out.
func Redact(s sdktrace.ReadOnlySpan) sdktrace.ReadOnlySpan {
	r := &redactedSpan{ReadOnlySpan: s}
	r.name = SafeSpanName(s.Name(), s.InstrumentationScope().Name)
	r.attrs, r.dropped = filterAttrs(s.Attributes())
	r.status = s.Status()
	r.status.Description = ""

	if evs := s.Events(); len(evs) > 0 {
		r.events = make([]sdktrace.Event, len(evs))
		for i, ev := range evs {
			attrs, n := filterAttrs(ev.Attributes)
			r.events[i] = sdktrace.Event{
				Name:                  safeEventName(ev.Name),
				Attributes:            attrs,
				DroppedAttributeCount: ev.DroppedAttributeCount + n,
				Time:                  ev.Time,
			}
		}
	}
	if links := s.Links(); len(links) > 0 {
		r.links = make([]sdktrace.Link, len(links))
		for i, l := range links {
			attrs, n := filterAttrs(l.Attributes)
			r.links[i] = sdktrace.Link{
				SpanContext:           l.SpanContext,
				Attributes:            attrs,
				DroppedAttributeCount: l.DroppedAttributeCount + n,
			}
		}
	}
	return r
}

// redactedSpan embeds the original span for everything the allow-list does
// not concern (ids, times, kind, resource, scope) and for the SDK's
// unexported marker method.
type redactedSpan struct {
	sdktrace.ReadOnlySpan
	name    string
	attrs   []attribute.KeyValue
	dropped int
	events  []sdktrace.Event
	links   []sdktrace.Link
	status  sdktrace.Status
}

func (r *redactedSpan) Name() string                     { return r.name }
func (r *redactedSpan) Attributes() []attribute.KeyValue { return r.attrs }
func (r *redactedSpan) Events() []sdktrace.Event         { return r.events }
func (r *redactedSpan) Links() []sdktrace.Link           { return r.links }
func (r *redactedSpan) Status() sdktrace.Status          { return r.status }
func (r *redactedSpan) DroppedAttributes() int {
	return r.ReadOnlySpan.DroppedAttributes() + r.dropped
}
