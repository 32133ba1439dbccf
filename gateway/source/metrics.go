package source

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/migrant-health/mhg/gateway/telemetry"
)

// Metric names, from Options.MeterProvider (by default the global
// OpenTelemetry meter provider). In Prometheus text format:
//
//	mhg_source_requests_total{mhg_source_id}       calls (a read, a search with its pages, a check)
//	mhg_source_errors_total{mhg_source_id,error_type}
//	mhg_source_duration_seconds{mhg_source_id}
//	mhg_source_breaker_state{mhg_source_id}        0 closed, 1 half-open, 2 open (fhir sources)
//	mhg_source_throttle_wait_seconds{mhg_source_id} waits before a call: Retry-After asked by the source, or the source's rate_limit
const (
	MetricRequests     = "mhg.source.requests"
	MetricErrors       = "mhg.source.errors"
	MetricDuration     = "mhg.source.duration"
	MetricBreakerState = "mhg.source.breaker.state"
	MetricThrottleWait = "mhg.source.throttle.wait"
)

// instruments record one source's calls. They are created per source, all
// on the same meter, so every series carries the source id.
type instruments struct {
	requests metric.Int64Counter
	errors   metric.Int64Counter
	duration metric.Float64Histogram
	breaker  metric.Int64Gauge
	wait     metric.Float64Histogram
	id       metric.MeasurementOption
	source   string
}

func newInstruments(mp metric.MeterProvider, sourceID string) (*instruments, error) {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter("github.com/migrant-health/mhg/gateway/source")
	in := &instruments{source: sourceID,
		id: metric.WithAttributeSet(attribute.NewSet(telemetry.AttrSourceID.String(sourceID)))}
	var errs []error
	var err error
	in.requests, err = m.Int64Counter(MetricRequests, metric.WithUnit("{request}"),
		metric.WithDescription("Calls to national sources."))
	errs = append(errs, err)
	in.errors, err = m.Int64Counter(MetricErrors, metric.WithUnit("{error}"),
		metric.WithDescription("Failed calls to national sources by error type."))
	errs = append(errs, err)
	in.duration, err = m.Float64Histogram(MetricDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of calls to national sources."))
	errs = append(errs, err)
	in.breaker, err = m.Int64Gauge(MetricBreakerState, metric.WithUnit("{state}"),
		metric.WithDescription("Circuit breaker state per source: 0 closed, 1 half-open, 2 open."))
	errs = append(errs, err)
	in.wait, err = m.Float64Histogram(MetricThrottleWait, metric.WithUnit("s"),
		metric.WithDescription("Waits before calls to national sources: Retry-After the source asked for, or the source's rate limit."))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("source %s: metrics: %w", sourceID, err)
	}
	return in, nil
}

// called records one call: its duration, and its error type when err is
// not nil. A resource the source does not hold is an answer, not an error.
func (in *instruments) called(ctx context.Context, start time.Time, err error) {
	in.requests.Add(ctx, 1, in.id)
	in.duration.Record(ctx, time.Since(start).Seconds(), in.id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		in.errors.Add(ctx, 1, metric.WithAttributes(
			telemetry.AttrSourceID.String(in.source), telemetry.AttrErrorType.String(telemetry.ErrorType(err))))
	}
}

// waited records one wait before a call.
func (in *instruments) waited(ctx context.Context, d time.Duration) {
	in.wait.Record(ctx, d.Seconds(), in.id)
}

// breakerState records a circuit breaker state ("closed", "half-open",
// "open", as gobreaker names them).
func (in *instruments) breakerState(ctx context.Context, state string) {
	var v int64
	switch state {
	case "half-open":
		v = 1
	case "open":
		v = 2
	}
	in.breaker.Record(ctx, v, in.id)
}

// The source sentinels name the error.type of failed calls, in spans and
// in MetricErrors, instead of a Go type name.
func init() {
	for _, e := range []struct {
		err  error
		name string
	}{
		{ErrNotFound, "source.not_found"}, {ErrTimeout, "source.timeout"}, {ErrUnavailable, "source.unavailable"},
		{ErrInvalidResponse, "source.invalid_response"}, {ErrRejected, "source.rejected"}, {ErrTruncated, "source.truncated"},
		{ErrThrottled, "source.throttled"}, {ErrDropped, "source.dropped"},
		{ErrNextLink, "source.next_link"},
	} {
		if err := telemetry.RegisterErrorType(e.err, e.name); err != nil {
			panic(err)
		}
	}
}
