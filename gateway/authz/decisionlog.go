package authz

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
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

// ErrDecisionNotFound: no decision with that id is in the log.
var ErrDecisionNotFound = errors.New("decision not found")

// DecisionFile reads a decision log the engine wrote (Options.DecisionLog,
// one LogEntry per line), for replaying and explaining recorded decisions.
type DecisionFile struct {
	// Path is the JSONL file (policy.decision_log).
	Path string
}

// maxLogLine bounds one decision log line.
const maxLogLine = 4 << 20

// Range calls fn for every entry with from <= Timestamp < to (a zero bound
// is open), in file order, and stops at fn's first error. A line that is
// not a decision log entry is an error naming the line, except an
// unterminated last line (a write in progress), which is skipped.
func (f DecisionFile) Range(ctx context.Context, from, to time.Time, fn func(LogEntry) error) error {
	file, err := os.Open(f.Path)
	if err != nil {
		return fmt.Errorf("decision log: %w", err)
	}
	defer file.Close()
	r := bufio.NewReaderSize(file, 64<<10)
	for line := 1; ; line++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("decision log: %w", err)
		}
		b, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			var long []byte
			long = append(long, b...)
			for errors.Is(err, bufio.ErrBufferFull) && len(long) <= maxLogLine {
				b, err = r.ReadSlice('\n')
				long = append(long, b...)
			}
			b = long
		}
		if errors.Is(err, io.EOF) {
			return nil // nothing left, or an unterminated last line
		}
		if err != nil {
			return fmt.Errorf("decision log line %d: %w", line, err)
		}
		var e LogEntry
		if err := json.Unmarshal(b, &e); err != nil || e.DecisionID == "" {
			return fmt.Errorf("decision log line %d: not a decision log entry", line)
		}
		if (!from.IsZero() && e.Timestamp.Before(from)) || (!to.IsZero() && !e.Timestamp.Before(to)) {
			continue
		}
		if err := fn(e); err != nil {
			return err
		}
	}
}

var errFound = errors.New("found")

// Find returns the entry of one decision; an error wrapping
// ErrDecisionNotFound when the log has none with that id.
func (f DecisionFile) Find(ctx context.Context, id string) (LogEntry, error) {
	var found LogEntry
	err := f.Range(ctx, time.Time{}, time.Time{}, func(e LogEntry) error {
		if e.DecisionID == id {
			found = e
			return errFound
		}
		return nil
	})
	switch {
	case errors.Is(err, errFound):
		return found, nil
	case err != nil:
		return LogEntry{}, err
	}
	return LogEntry{}, fmt.Errorf("%w: %s", ErrDecisionNotFound, id)
}

// Allowed reports what a recorded decision decided: the result's "allow",
// false for an entry whose evaluation failed or has no result.
func (e LogEntry) Allowed() bool {
	m, ok := e.Result.(map[string]any)
	if !ok || e.Error != "" {
		return false
	}
	allow, _ := m["allow"].(bool)
	return allow
}

// Reasons returns the recorded result's reasons.
func (e LogEntry) Reasons() []string {
	m, _ := e.Result.(map[string]any)
	list, _ := m["reasons"].([]any)
	out := make([]string, 0, len(list))
	for _, r := range list {
		if s, ok := r.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// Revision returns the revision that took the recorded decision.
func (e LogEntry) Revision() string { return e.Bundles[bundleName].Revision }
