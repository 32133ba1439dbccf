package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/migrant-health/mhg/gateway/telemetry"
)

// Metric names, from Options.MeterProvider (by default the global
// OpenTelemetry meter provider). In Prometheus text format:
//
//	mhg_audit_records_total{mhg_outcome}            records written, by outcome
//	mhg_audit_failures_total{mhg_audit_sink,error_type}
//	mhg_audit_write_duration_seconds                one record, fsync included
const (
	MetricRecords       = "mhg.audit.records"
	MetricFailures      = "mhg.audit.failures"
	MetricWriteDuration = "mhg.audit.write.duration"
)

// Audit sinks, as the mhg.audit.sink attribute names them.
const (
	sinkFile  = "file"
	sinkRedis = "redis"
)

type instruments struct {
	records  metric.Int64Counter
	failures metric.Int64Counter
	duration metric.Float64Histogram
}

func newInstruments(mp metric.MeterProvider) (*instruments, error) {
	m := mp.Meter("github.com/migrant-health/mhg/gateway/audit")
	var in instruments
	var errs []error
	var err error
	in.records, err = m.Int64Counter(MetricRecords, metric.WithUnit("{record}"),
		metric.WithDescription("Audit records written by outcome."))
	errs = append(errs, err)
	in.failures, err = m.Int64Counter(MetricFailures, metric.WithUnit("{failure}"),
		metric.WithDescription("Audit sink write failures."))
	errs = append(errs, err)
	in.duration, err = m.Float64Histogram(MetricWriteDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of one audit record write, fsync included."))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("audit: metrics: %w", err)
	}
	return &in, nil
}

// written records one audit write to sink: a record by outcome when err is
// nil (and its duration, for the file), a failure by error type otherwise.
func (in *instruments) written(ctx context.Context, sink, outcome string, d time.Duration, err error) {
	if err != nil {
		in.failures.Add(ctx, 1, metric.WithAttributes(
			telemetry.AttrAuditSink.String(sink), telemetry.AttrErrorType.String(telemetry.ErrorType(err))))
		return
	}
	if sink == sinkFile {
		in.duration.Record(ctx, d.Seconds())
		in.records.Add(ctx, 1, metric.WithAttributes(telemetry.AttrOutcome.String(outcome)))
	}
}
