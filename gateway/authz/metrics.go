package authz

import (
	"context"
	"sync"
	"time"

	"github.com/migrant-health/mhg/gateway/telemetry"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

const instrumentationName = "github.com/migrant-health/mhg/gateway/authz"

// Metric names, from Options.MeterProvider (by default the global
// OpenTelemetry meter provider). Attributes
// hold no patient data: phase, outcome, rule ids, stages.
const (
	// MetricDecisions counts decisions by phase and outcome (allow, deny,
	// error).
	MetricDecisions = "mhg.authz.decisions"
	// MetricDecisionReasons counts the rule ids decisions gave, by rule and
	// outcome: which rules deny most.
	MetricDecisionReasons = "mhg.authz.decision.reasons"
	// MetricDecisionDuration is the decision latency in seconds, by phase.
	MetricDecisionDuration = "mhg.authz.decision.duration"
	// MetricReloads counts revisions activated.
	MetricReloads = "mhg.authz.reloads"
	// MetricReloadFailures counts rejected reloads by stage (read, data,
	// compile, test, prepare).
	MetricReloadFailures = "mhg.authz.reload.failures"
	// MetricPolicyStale is 1 while the engine serves an older revision
	// because the last reload failed, or serves none.
	MetricPolicyStale = "mhg.authz.policy.stale"
)

// Outcomes of a decision, as metric attributes.
const (
	OutcomeAllow = "allow"
	OutcomeDeny  = "deny"
	OutcomeError = "error"
)

type instruments struct {
	decisions metric.Int64Counter
	reasons   metric.Int64Counter
	duration  metric.Float64Histogram
	reloads   metric.Int64Counter
	failures  metric.Int64Counter
}

func newInstruments(mp metric.MeterProvider, e *Engine) (*instruments, error) {
	m := mp.Meter(instrumentationName)
	var in instruments
	var err error
	if in.decisions, err = m.Int64Counter(MetricDecisions,
		metric.WithDescription("Policy decisions by phase and outcome."),
		metric.WithUnit("{decision}")); err != nil {
		return nil, err
	}
	if in.reasons, err = m.Int64Counter(MetricDecisionReasons,
		metric.WithDescription("Rule ids given as decision reasons, by rule and outcome."),
		metric.WithUnit("{reason}")); err != nil {
		return nil, err
	}
	if in.duration, err = m.Float64Histogram(MetricDecisionDuration,
		metric.WithDescription("Policy decision latency."),
		metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .05)); err != nil {
		return nil, err
	}
	if in.reloads, err = m.Int64Counter(MetricReloads,
		metric.WithDescription("Policy revisions activated."),
		metric.WithUnit("{reload}")); err != nil {
		return nil, err
	}
	if in.failures, err = m.Int64Counter(MetricReloadFailures,
		metric.WithDescription("Policy reloads rejected, by stage; the last good revision stays active."),
		metric.WithUnit("{reload}")); err != nil {
		return nil, err
	}
	if _, err = m.Int64ObservableGauge(MetricPolicyStale,
		metric.WithDescription("1 while no policy is active or the last reload failed."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			var v int64
			if e.Ready() != nil {
				v = 1
			}
			o.Observe(v)
			return nil
		})); err != nil {
		return nil, err
	}
	return &in, nil
}

func (in *instruments) decided(ctx context.Context, phase string, d Decision, err error, elapsed time.Duration) {
	outcome := OutcomeDeny
	switch {
	case err != nil:
		outcome = OutcomeError
	case d.Allow:
		outcome = OutcomeAllow
	}
	in.decisions.Add(ctx, 1, measurement(phase, outcome))
	in.duration.Record(ctx, elapsed.Seconds(), measurement(phase, ""))
	for _, r := range d.Reasons {
		in.reasons.Add(ctx, 1, measurement("", outcome, r))
	}
}

// maxMeasurementSets bounds the attribute sets measurement keeps: the
// phases, outcomes and rule ids of a policy are few, but a policy could
// make up reasons.
const maxMeasurementSets = 1024

var (
	measurementMu   sync.RWMutex
	measurementSets = map[[3]string]metric.MeasurementOption{}
)

// measurement is the attribute set of a decision metric (phase, outcome,
// rule id; "" leaves one out), built once per combination rather than on
// every decision.
func measurement(phase, outcome string, rule ...string) metric.MeasurementOption {
	key := [3]string{phase, outcome}
	if len(rule) > 0 {
		key[2] = rule[0]
	}
	measurementMu.RLock()
	opt, ok := measurementSets[key]
	measurementMu.RUnlock()
	if ok {
		return opt
	}
	var attrs []attribute.KeyValue
	if key[2] != "" {
		attrs = append(attrs, telemetry.AttrRuleID.String(key[2]))
	}
	if phase != "" {
		attrs = append(attrs, telemetry.AttrPhase.String(phase))
	}
	if outcome != "" {
		attrs = append(attrs, telemetry.AttrDecision.String(outcome))
	}
	opt = metric.WithAttributeSet(attribute.NewSet(attrs...))
	measurementMu.Lock()
	if len(measurementSets) < maxMeasurementSets {
		measurementSets[key] = opt
	}
	measurementMu.Unlock()
	return opt
}

func (in *instruments) reloaded(ctx context.Context) {
	in.reloads.Add(ctx, 1)
}

func (in *instruments) reloadFailed(ctx context.Context, stage string) {
	in.failures.Add(ctx, 1, metric.WithAttributes(attribute.String("stage", stage)))
}
