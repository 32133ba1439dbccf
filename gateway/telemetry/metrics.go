package telemetry

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
)

// ScopeName is the instrumentation scope of the gateway's own instruments.
const ScopeName = "github.com/migrant-health/mhg/gateway"

// Metric names. In Prometheus text format dots become underscores and
// counters gain _total, durations _seconds:
//
//	http_server_request_duration_seconds{http_route,http_request_method,http_response_status_code}
//	    request rate and latency by route template (recorded by otelgin)
//	mhg_authz_decisions_total{mhg_phase,mhg_decision,mhg_rule_id}
//	mhg_cache_lookups_total{mhg_cache_kind,mhg_cache_hit}
//	    hit ratio: sum(rate(mhg_cache_lookups_total{mhg_cache_hit="true"}[5m]))
//	             / sum(rate(mhg_cache_lookups_total[5m]))
//	mhg_source_requests_total{mhg_source_id}
//	mhg_source_errors_total{mhg_source_id,error_type}
//	mhg_source_duration_seconds{mhg_source_id}
//	mhg_source_breaker_state{mhg_source_id}  0 closed, 1 half-open, 2 open
//	mhg_audit_records_total{mhg_outcome}
//	mhg_audit_failures_total{mhg_audit_sink,error_type}
//	mhg_audit_write_duration_seconds
const (
	MetricDecisions      = "mhg.authz.decisions"
	MetricCacheLookups   = "mhg.cache.lookups"
	MetricSourceRequests = "mhg.source.requests"
	MetricSourceErrors   = "mhg.source.errors"
	MetricSourceDuration = "mhg.source.duration"
	MetricBreakerState   = "mhg.source.breaker.state"
	MetricAuditRecords   = "mhg.audit.records"
	MetricAuditFailures  = "mhg.audit.failures"
	MetricAuditDuration  = "mhg.audit.write.duration"
)

// Breaker states as AttrBreakerState and MetricBreakerState spell them.
const (
	BreakerClosed   = "closed"
	BreakerHalfOpen = "half-open"
	BreakerOpen     = "open"
)

// Instruments are the gateway's metric instruments. A nil *Instruments
// records nothing, so a package can hold one without checking.
type Instruments struct {
	decisions      metric.Int64Counter
	cacheLookups   metric.Int64Counter
	sourceRequests metric.Int64Counter
	sourceErrors   metric.Int64Counter
	sourceDuration metric.Float64Histogram
	breakerState   metric.Int64Gauge
	auditRecords   metric.Int64Counter
	auditFailures  metric.Int64Counter
	auditDuration  metric.Float64Histogram
}

// NewInstruments creates the instruments on mp.
func NewInstruments(mp metric.MeterProvider) (*Instruments, error) {
	m := mp.Meter(ScopeName)
	var (
		i    Instruments
		errs []error
		err  error
	)
	i.decisions, err = m.Int64Counter(MetricDecisions, metric.WithUnit("{decision}"),
		metric.WithDescription("Policy decisions by phase, outcome and rule id (one count per rule id)."))
	errs = append(errs, err)
	i.cacheLookups, err = m.Int64Counter(MetricCacheLookups, metric.WithUnit("{lookup}"),
		metric.WithDescription("Cache lookups by kind and hit."))
	errs = append(errs, err)
	i.sourceRequests, err = m.Int64Counter(MetricSourceRequests, metric.WithUnit("{request}"),
		metric.WithDescription("Calls to national sources."))
	errs = append(errs, err)
	i.sourceErrors, err = m.Int64Counter(MetricSourceErrors, metric.WithUnit("{error}"),
		metric.WithDescription("Failed calls to national sources by error type."))
	errs = append(errs, err)
	i.sourceDuration, err = m.Float64Histogram(MetricSourceDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of calls to national sources."))
	errs = append(errs, err)
	i.breakerState, err = m.Int64Gauge(MetricBreakerState, metric.WithUnit("{state}"),
		metric.WithDescription("Circuit breaker state per source: 0 closed, 1 half-open, 2 open."))
	errs = append(errs, err)
	i.auditRecords, err = m.Int64Counter(MetricAuditRecords, metric.WithUnit("{record}"),
		metric.WithDescription("Audit records written by outcome."))
	errs = append(errs, err)
	i.auditFailures, err = m.Int64Counter(MetricAuditFailures, metric.WithUnit("{failure}"),
		metric.WithDescription("Audit sink write failures."))
	errs = append(errs, err)
	i.auditDuration, err = m.Float64Histogram(MetricAuditDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of one audit record write, fsync included."))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("telemetry: instruments: %w", err)
	}
	return &i, nil
}

var (
	globalOnce sync.Once
	globalInst *Instruments
)

// GlobalInstruments returns instruments on the global meter provider, for
// packages that are not handed a Provider. Instruments created before Setup
// follow the provider Setup installs.
func GlobalInstruments() *Instruments {
	globalOnce.Do(func() {
		i, err := NewInstruments(otel.GetMeterProvider())
		if err == nil {
			globalInst = i
		}
	})
	return globalInst
}

// Decision counts one policy decision, once per rule id (once with an empty
// rule id when there is none).
func (i *Instruments) Decision(ctx context.Context, phase string, allow bool, ruleIDs []string) {
	if i == nil {
		return
	}
	verdict := "deny"
	if allow {
		verdict = "allow"
	}
	if len(ruleIDs) == 0 {
		ruleIDs = []string{""}
	}
	for _, r := range ruleIDs {
		i.decisions.Add(ctx, 1, metric.WithAttributes(
			AttrPhase.String(phase), AttrDecision.String(verdict), AttrRuleID.String(r)))
	}
}

// CacheLookup counts one cache lookup.
func (i *Instruments) CacheLookup(ctx context.Context, kind string, hit bool) {
	if i == nil {
		return
	}
	i.cacheLookups.Add(ctx, 1, metric.WithAttributes(AttrCacheKind.String(kind), AttrCacheHit.Bool(hit)))
}

// SourceCall records one call to a source: its duration, and its error
// type when err is not nil.
func (i *Instruments) SourceCall(ctx context.Context, sourceID string, d time.Duration, err error) {
	if i == nil {
		return
	}
	src := metric.WithAttributes(AttrSourceID.String(sourceID))
	i.sourceRequests.Add(ctx, 1, src)
	i.sourceDuration.Record(ctx, d.Seconds(), src)
	if err != nil {
		i.sourceErrors.Add(ctx, 1, metric.WithAttributes(
			AttrSourceID.String(sourceID), AttrErrorType.String(ErrorType(err))))
	}
}

// BreakerState records a source's circuit breaker state (BreakerClosed,
// BreakerHalfOpen or BreakerOpen).
func (i *Instruments) BreakerState(ctx context.Context, sourceID, state string) {
	if i == nil {
		return
	}
	var v int64
	switch state {
	case BreakerHalfOpen:
		v = 1
	case BreakerOpen:
		v = 2
	}
	i.breakerState.Record(ctx, v, metric.WithAttributes(AttrSourceID.String(sourceID)))
}

// AuditWrite records one audit write to sink ("file" or "redis"): a record
// by outcome when err is nil, a failure by error type otherwise.
func (i *Instruments) AuditWrite(ctx context.Context, sink, outcome string, d time.Duration, err error) {
	if i == nil {
		return
	}
	if err != nil {
		i.auditFailures.Add(ctx, 1, metric.WithAttributes(
			AttrAuditSink.String(sink), AttrErrorType.String(ErrorType(err))))
		return
	}
	if sink == "file" {
		i.auditDuration.Record(ctx, d.Seconds())
		i.auditRecords.Add(ctx, 1, metric.WithAttributes(AttrOutcome.String(outcome)))
	}
}
