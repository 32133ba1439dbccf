package authz

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// LogEntry is one decision log line, in the shape of OPA's decision logs
// (https://www.openpolicyagent.org/docs/management-decision-logs), so that
// tools that read OPA decision logs read these.
type LogEntry struct {
	// Labels identify the gateway instance.
	Labels map[string]string `json:"labels"`
	// DecisionID is Decision.ID.
	DecisionID string `json:"decision_id"`
	// TraceID and SpanID are the authz.decide span's, when traced.
	TraceID string `json:"trace_id,omitempty"`
	SpanID  string `json:"span_id,omitempty"`
	// Bundles names the policy revision: {"mhg": {"revision": "..."}}.
	Bundles map[string]LogBundle `json:"bundles"`
	// Path is the decision's rule path, mhg/authz/decision.
	Path string `json:"path"`
	// Input is the policy input, with the values listed in Erased removed.
	Input Input `json:"input"`
	// Result is the policy's result as it returned it; absent when none.
	Result any `json:"result,omitempty"`
	// Erased lists JSON pointers of input values removed (consent ids).
	Erased []string `json:"erased,omitempty"`
	// Error says why the evaluation failed; the decision then denied.
	Error string `json:"error,omitempty"`
	// Timestamp is when the decision was taken.
	Timestamp time.Time `json:"timestamp"`
	// Metrics holds timer_rego_query_eval_ns.
	Metrics map[string]int64 `json:"metrics"`
}

// LogBundle is the revision of one bundle in a LogEntry.
type LogBundle struct {
	// Revision is the policy revision that decided.
	Revision string `json:"revision"`
}

// bundleName is the name the policies carry in decision logs.
const bundleName = "mhg"

func (e *Engine) writeLog(ctx context.Context, in Input, d Decision, result any, evalErr error, elapsed time.Duration) {
	entry := LogEntry{
		Labels:     e.labels,
		DecisionID: d.ID,
		Bundles:    map[string]LogBundle{bundleName: {Revision: d.Revision}},
		Path:       decisionPath,
		Result:     result,
		Timestamp:  e.now().UTC(),
		Metrics:    map[string]int64{"timer_rego_query_eval_ns": elapsed.Nanoseconds()},
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		entry.TraceID = sc.TraceID().String()
		entry.SpanID = sc.SpanID().String()
	}
	if evalErr != nil {
		entry.Error = evalErr.Error()
	}
	// Consent ids point at a patient's records: they stay out of the log.
	in.Consent = append([]Provision(nil), in.Consent...)
	for i := range in.Consent {
		if in.Consent[i].ConsentID != "" {
			in.Consent[i].ConsentID = ""
			entry.Erased = append(entry.Erased, fmt.Sprintf("/input/consent/%d/consent_id", i))
		}
	}
	entry.Input = in
	b, err := json.Marshal(entry)
	if err != nil {
		e.log.Error("decision log entry not written", "decision_id", d.ID, "error", err)
		return
	}
	b = append(b, '\n')
	e.logMu.Lock()
	_, err = e.opts.DecisionLog.Write(b)
	e.logMu.Unlock()
	if err != nil {
		e.log.Error("decision log entry not written", "decision_id", d.ID, "error", err)
	}
}
