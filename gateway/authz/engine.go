package authz

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/migrant-health/mhg/gateway/telemetry"
	"io"
	"io/fs"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/rego"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Default intervals.
const (
	// DefaultWatchInterval is how often a watched directory is checked.
	DefaultWatchInterval = 2 * time.Second
	// DefaultBundlePollInterval is how often a bundle server is polled.
	DefaultBundlePollInterval = time.Minute
)

// RevisionNone is Decision.Revision when no policy is loaded.
const RevisionNone = "none"

// Reasons the engine itself gives, when the policy could not decide.
const (
	ReasonNoPolicy  = "engine.no-policy"
	ReasonError     = "engine.error"
	ReasonUndefined = "engine.undefined"
)

// Options configure an Engine. The zero value loads the policies built into
// the binary once, logs decisions nowhere and logs with slog.Default().
type Options struct {
	// Dir is a policy directory in OPA bundle layout (Rego modules with
	// their *_test.rego, data files, an optional .manifest). Empty means
	// the policies built into the binary (package policies).
	Dir string
	// BundleURL is an OPA bundle server URL (a .tar.gz bundle as `opa
	// build` makes it). When set it replaces Dir: the engine starts with no
	// policy (every decision denies, Ready reports ErrNoPolicy) and
	// activates each revision the server serves (If-None-Match polling,
	// OPA's bundle reader; see bundleClient).
	BundleURL string
	// PollInterval is how often BundleURL is polled (zero:
	// DefaultBundlePollInterval) or, with Watch, how often Dir is checked
	// for changes (zero: DefaultWatchInterval).
	PollInterval time.Duration
	// Watch reloads Dir when its files change. It polls a fingerprint of
	// the directory (file names, sizes, modification times), which also
	// sees the symlink swaps of Kubernetes ConfigMaps. Ignored with
	// BundleURL and for the built-in policies (Dir empty).
	Watch bool
	// DecisionLog receives one JSON line per decision in OPA's
	// decision-log shape (see LogEntry). Nil logs no decisions. Writes are
	// serialised; a slow writer slows decisions.
	DecisionLog io.Writer
	// Logger receives reloads and their failures. Nil means slog.Default().
	Logger *slog.Logger
	// Labels are copied into every decision log entry (OPA's "labels":
	// instance id, version, ...). Nil adds only {"app": "mhg"}.
	Labels map[string]string
	// Now is the clock policies see (time.now_ns). Nil means time.Now.
	Now func() time.Time
	// MeterProvider gives the engine's metrics (see the Metric* names).
	// Nil means the OpenTelemetry global meter provider.
	MeterProvider metric.MeterProvider
	// MemoEntries bounds the decisions each revision memoizes: an input
	// identical to one decided before under the same revision gets the
	// same answer without evaluating the policy again, until the next
	// agreement or consent validity boundary and for MaxMemoTTL at most
	// (see memo). Every decision still gets its own id, span, metrics
	// and decision log entry. Zero means DefaultMemoEntries; negative
	// turns memoization off.
	MemoEntries int
}

// Engine is the policy decision point. It is safe for concurrent use.
// Decisions are evaluated against the revision loaded when Decide starts;
// reloads swap revisions atomically.
type Engine struct {
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	labels  map[string]string
	metrics *instruments

	cur atomic.Pointer[compiled]

	mu        sync.Mutex // guards lastErr, lastErrAt, loadedAt, fingerprint
	lastErr   error
	lastErrAt time.Time
	loadedAt  time.Time
	seen      string // fingerprint of the directory last tried

	reloadMu sync.Mutex // one reload at a time
	bundles  *bundleClient

	logMu sync.Mutex // serialises DecisionLog writes

	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

// New builds an engine and loads its first revision. With Dir (or the
// built-in policies) a first revision that fails to load is an error; with
// BundleURL the first download happens in the background and the engine
// denies everything until a revision is active.
func New(opts Options) (*Engine, error) {
	e, err := newBare(opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel

	if opts.BundleURL != "" {
		b, err := newBundleClient(opts.BundleURL)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("authz: bundle URL: %w", err)
		}
		e.bundles = b
		e.setErr(fmt.Errorf("%w: waiting for the first bundle from the bundle server", ErrNoPolicy))
		interval := opts.PollInterval
		if interval == 0 {
			interval = DefaultBundlePollInterval
		}
		go e.loop(ctx, interval)
		return e, nil
	}

	if err := e.Reload(ctx); err != nil {
		cancel()
		return nil, fmt.Errorf("authz: %w", err)
	}
	if opts.Watch && opts.Dir != "" {
		interval := opts.PollInterval
		if interval == 0 {
			interval = DefaultWatchInterval
		}
		go e.loop(ctx, interval)
		return e, nil
	}
	close(e.done)
	return e, nil
}

// newBare builds an engine with no revision loaded and nothing running.
func newBare(opts Options) (*Engine, error) {
	if opts.PollInterval < 0 {
		return nil, fmt.Errorf("authz: poll interval %s is negative", opts.PollInterval)
	}
	e := &Engine{
		opts:   opts,
		log:    opts.Logger,
		now:    opts.Now,
		labels: map[string]string{"app": "mhg"},
		done:   make(chan struct{}),
		cancel: func() {},
	}
	if e.log == nil {
		e.log = slog.Default()
	}
	e.log = e.log.With("component", "authz")
	if e.now == nil {
		e.now = time.Now
	}
	for k, v := range opts.Labels {
		e.labels[k] = v
	}
	mp := opts.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m, err := newInstruments(mp, e)
	if err != nil {
		return nil, fmt.Errorf("authz: metrics: %w", err)
	}
	e.metrics = m
	return e, nil
}

// loop polls the bundle server or the watched directory until Close.
func (e *Engine) loop(ctx context.Context, interval time.Duration) {
	defer close(e.done)
	if e.bundles != nil {
		// The first download does not wait for the first tick.
		_ = e.Reload(ctx)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if e.bundles == nil && !e.dirChanged() {
				continue
			}
			// Failures are logged, counted and kept for Ready.
			_ = e.Reload(ctx)
		}
	}
}

// dirChanged reports whether the watched directory differs from what was
// last loaded (or last failed to load).
func (e *Engine) dirChanged() bool {
	fp, err := fingerprint(e.opts.Dir)
	if err != nil {
		fp = "error: " + err.Error()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return fp != e.seen
}

// Reload loads the policy source now: the directory (or built-in
// policies), or a download from the bundle server. A revision that fails
// to read, validate, compile or pass its Rego tests is rejected: the
// engine keeps serving the last good revision, and the error is logged,
// counted, returned and reported by Ready.
func (e *Engine) Reload(ctx context.Context) error {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	if e.bundles != nil {
		return e.reloadBundle(ctx)
	}
	if e.opts.Dir != "" {
		if fp, err := fingerprint(e.opts.Dir); err == nil {
			e.mu.Lock()
			e.seen = fp
			e.mu.Unlock()
		}
	}
	fsys, where, err := policyFS(e.opts.Dir)
	if err != nil {
		return e.reject(where, err)
	}
	set, err := loadFS(fsys)
	if err != nil {
		return e.reject(where, err)
	}
	return e.activate(ctx, where, set)
}

// activate compiles and tests a revision and swaps it in.
func (e *Engine) activate(ctx context.Context, where string, set *policySet) error {
	c, err := compile(ctx, set)
	if err != nil {
		return e.reject(where, fmt.Errorf("revision %s: %w", set.revision, err))
	}
	size := e.opts.MemoEntries
	if size == 0 {
		size = DefaultMemoEntries
	}
	c.memo = newMemo(size, set.agreements)
	prev := e.cur.Swap(c)
	e.mu.Lock()
	e.lastErr = nil
	e.lastErrAt = time.Time{}
	e.loadedAt = e.now()
	e.mu.Unlock()
	e.metrics.reloaded(ctx)
	from := RevisionNone
	if prev != nil {
		from = prev.revision
	}
	e.log.Info("policy revision active", "revision", c.revision, "hash", c.hash, "previous", from)
	return nil
}

// reject records a failed load.
func (e *Engine) reject(where string, err error) error {
	stage := failedStage(err)
	if stage == "" {
		stage = stageRead
	}
	e.setErr(err)
	e.metrics.reloadFailed(context.Background(), stage)
	serving := RevisionNone
	if c := e.cur.Load(); c != nil {
		serving = c.revision
	}
	e.log.Error("policy reload rejected; keeping the last good revision",
		"stage", stage, "serving", serving, "error", err)
	return err
}

func (e *Engine) setErr(err error) {
	e.mu.Lock()
	e.lastErr = err
	e.lastErrAt = e.now()
	e.mu.Unlock()
}

// Revision returns the active policy revision, RevisionNone when none is.
func (e *Engine) Revision() string {
	if c := e.cur.Load(); c != nil {
		return c.revision
	}
	return RevisionNone
}

// Ready says whether decisions come from a good policy, for /readyz. It
// returns nil when a revision is active and its last reload succeeded; an
// error wrapping ErrNoPolicy when no revision is active (every decision
// denies: not ready); an error wrapping ErrStalePolicy when a revision is
// active but a later reload failed (decisions use the last good revision:
// the caller may stay ready and show the message).
func (e *Engine) Ready() error {
	e.mu.Lock()
	last := e.lastErr
	e.mu.Unlock()
	c := e.cur.Load()
	switch {
	case c == nil && last == nil:
		return ErrNoPolicy
	case c == nil:
		if errors.Is(last, ErrNoPolicy) {
			return last
		}
		return fmt.Errorf("%w: %w", ErrNoPolicy, last)
	case last != nil:
		return fmt.Errorf("%w (revision %s): %w", ErrStalePolicy, c.revision, last)
	}
	return nil
}

// Status describes the engine's policy state, for admin endpoints.
type Status struct {
	// Revision is the active revision, RevisionNone when none is.
	Revision string `json:"revision"`
	// Hash is the active revision's content hash.
	Hash string `json:"hash,omitempty"`
	// LoadedAt is when the active revision was activated.
	LoadedAt time.Time `json:"loaded_at,omitzero"`
	// Agreements counts the active revision's agreements.
	Agreements int `json:"agreements"`
	// LastError is the last reload failure since the last success.
	LastError string `json:"last_error,omitempty"`
	// LastErrorAt is when it happened.
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// Status returns the engine's policy state.
func (e *Engine) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := Status{Revision: RevisionNone, LoadedAt: e.loadedAt, LastErrorAt: e.lastErrAt}
	if e.lastErr != nil {
		s.LastError = e.lastErr.Error()
	}
	if c := e.cur.Load(); c != nil {
		s.Revision = c.revision
		s.Hash = c.hash
		s.Agreements = len(c.set.agreements)
	}
	return s
}

// Close stops watching and polling. Decisions still work afterwards, with
// the last active revision.
func (e *Engine) Close() {
	e.closeOnce.Do(func() {
		e.cancel()
		<-e.done
	})
}

// Decide evaluates data.mhg.authz.decision for in. The Decision always has
// an ID and a Revision, and denies whenever anything goes wrong: no policy
// loaded (error wrapping ErrNoPolicy), an evaluation error, an undefined or
// malformed result (errors wrapping ErrEvaluation). A denial by the policy
// itself is a Decision with Allow false and a nil error.
func (e *Engine) Decide(ctx context.Context, in Input) (Decision, error) {
	start := time.Now()
	in = in.normalized()
	ctx, span := otel.Tracer(instrumentationName).Start(ctx, telemetry.SpanAuthzDecide,
		trace.WithAttributes(telemetry.AttrPhase.String(in.Phase)))
	defer span.End()
	if in.Source != nil {
		span.SetAttributes(telemetry.AttrSourceID.String(in.Source.ID))
	}

	d := Decision{ID: newDecisionID(), Revision: RevisionNone}
	c := e.cur.Load()
	var err error
	var result any
	if c == nil {
		d.Reasons = []string{ReasonNoPolicy}
		err = ErrNoPolicy
	} else {
		d.Revision = c.revision
		now := e.now()
		var key string
		memoable, hit := false, false
		if c.memo != nil {
			key, memoable = memoKey(in)
		}
		if memoable {
			result, hit = c.memo.get(key, now)
		}
		if !hit {
			result, err = c.eval(ctx, in, now)
		}
		if err == nil {
			err = d.fill(result)
		}
		// OPA looks at cancellation only now and then; a decision whose
		// caller gave up is not one to act on.
		if err == nil && ctx.Err() != nil {
			err = ctx.Err()
		}
		if err == nil && memoable && !hit {
			c.memo.put(key, in, now, result)
		}
		if err != nil {
			d.Reasons = []string{ReasonError}
			if errors.Is(err, errUndefined) {
				d.Reasons = []string{ReasonUndefined}
			}
			d.Allow = false
			d.Obligations = nil
			d.Agreements = nil
			err = fmt.Errorf("%w: revision %s: %w", ErrEvaluation, c.revision, err)
		}
	}
	if d.Reasons == nil {
		d.Reasons = []string{}
	}
	if d.Obligations == nil {
		d.Obligations = []Obligation{}
	}
	if d.Agreements == nil {
		d.Agreements = []string{}
	}
	elapsed := time.Since(start)

	span.SetAttributes(
		telemetry.AttrDecision.String(verdict(d.Allow)),
		telemetry.AttrPolicyRevision.String(d.Revision),
		telemetry.AttrDecisionID.String(d.ID),
		telemetry.AttrRuleIDs.StringSlice(d.Reasons),
	)
	if err != nil {
		span.SetStatus(codes.Error, "policy evaluation failed")
	}
	e.metrics.decided(ctx, in.Phase, d, err, elapsed)
	if e.opts.DecisionLog != nil {
		e.writeLog(ctx, in, d, result, err, elapsed)
	}
	return d, err
}

// eval runs the prepared query.
func (c *compiled) eval(ctx context.Context, in Input, now time.Time, opts ...rego.EvalOption) (any, error) {
	opts = append(opts, rego.EvalParsedInput(in.value()), rego.EvalTime(now))
	rs, err := c.query.Eval(ctx, opts...)
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil, errUndefined
	}
	return rs[0].Expressions[0].Value, nil
}

var errUndefined = errors.New("the decision is undefined")

// fill reads the policy's result into d. A result of the wrong shape is an
// error: a policy bug must deny, not half-allow.
func (d *Decision) fill(result any) error {
	m, ok := result.(map[string]any)
	if !ok {
		if result == nil {
			return errUndefined
		}
		return fmt.Errorf("the decision is a %T, want an object", result)
	}
	allow, ok := m["allow"].(bool)
	if !ok {
		return errors.New(`the decision has no boolean "allow"`)
	}
	reasons, err := stringList(m["reasons"], "reasons")
	if err != nil {
		return err
	}
	agreements, err := stringList(m["agreements"], "agreements")
	if err != nil {
		return err
	}
	obligations, err := obligationList(m["obligations"])
	if err != nil {
		return err
	}
	d.Allow, d.Reasons, d.Agreements, d.Obligations = allow, reasons, agreements, obligations
	return nil
}

func stringList(v any, field string) ([]string, error) {
	if v == nil {
		return []string{}, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("decision %s is a %T, want an array", field, v)
	}
	out := make([]string, len(list))
	for i, x := range list {
		s, ok := x.(string)
		if !ok {
			return nil, fmt.Errorf("decision %s[%d] is a %T, want a string", field, i, x)
		}
		out[i] = s
	}
	return out, nil
}

func obligationList(v any) ([]Obligation, error) {
	if v == nil {
		return []Obligation{}, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("decision obligations is a %T, want an array", v)
	}
	out := make([]Obligation, 0, len(list))
	for i, x := range list {
		m, ok := x.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("decision obligations[%d] is a %T, want an object", i, x)
		}
		var o Obligation
		var err error
		if o.Kind, ok = m["kind"].(string); !ok {
			return nil, fmt.Errorf("decision obligations[%d] has no kind", i)
		}
		switch o.Kind {
		case ObligationRedact, ObligationLabel, ObligationNotify, ObligationMatch, ObligationStatistics:
		default:
			return nil, fmt.Errorf("decision obligations[%d]: unknown kind %q", i, o.Kind)
		}
		o.Rule, _ = m["rule"].(string)
		o.Target, _ = m["target"].(string)
		o.Grade, _ = m["grade"].(string)
		o.Grain, _ = m["grain"].(string)
		if o.K, err = intValue(m["k"]); err != nil {
			return nil, fmt.Errorf("decision obligations[%d] k: %w", i, err)
		}
		if o.Rounding, err = intValue(m["rounding"]); err != nil {
			return nil, fmt.Errorf("decision obligations[%d] rounding: %w", i, err)
		}
		if t, ok := m["traits"]; ok {
			if o.Traits, err = stringList(t, "obligation traits"); err != nil {
				return nil, err
			}
		}
		if r, ok := m["required"]; ok {
			if o.Required, err = stringList(r, "obligation required traits"); err != nil {
				return nil, err
			}
		}
		if p, ok := m["paths"]; ok {
			if o.Paths, err = stringList(p, "obligation paths"); err != nil {
				return nil, err
			}
		}
		if l, ok := m["labels"]; ok {
			labels, ok := l.([]any)
			if !ok {
				return nil, fmt.Errorf("decision obligations[%d] labels is a %T, want an array", i, l)
			}
			for _, x := range labels {
				lm, _ := x.(map[string]any)
				sys, _ := lm["system"].(string)
				code, _ := lm["code"].(string)
				if code == "" {
					return nil, fmt.Errorf("decision obligations[%d] has a label without a code", i)
				}
				o.Labels = append(o.Labels, Coding{System: sys, Code: code})
			}
		}
		switch {
		case o.Kind == ObligationRedact && len(o.Paths) == 0,
			o.Kind == ObligationLabel && len(o.Labels) == 0,
			o.Kind == ObligationNotify && o.Target == "",
			o.Kind == ObligationMatch && o.Grade == "",
			o.Kind == ObligationStatistics && (o.K < 2 || o.Grain == ""):
			return nil, fmt.Errorf("decision obligations[%d]: %s obligation is empty", i, o.Kind)
		}
		out = append(out, o)
	}
	return out, nil
}

// intValue reads a whole number from a decision (absent is 0).
func intValue(v any) (int, error) {
	switch n := v.(type) {
	case nil:
		return 0, nil
	case json.Number:
		i, err := n.Int64()
		return int(i), err
	case float64:
		if n != float64(int(n)) {
			return 0, fmt.Errorf("%v is not a whole number", n)
		}
		return int(n), nil
	case int:
		return n, nil
	case int64:
		return int(n), nil
	}
	return 0, fmt.Errorf("a %T, want a number", v)
}

// newDecisionID returns a random UUID (version 4), as OPA's decision ids.
func newDecisionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+).
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], b[10:16])
	return string(s[:])
}

// fingerprint summarises a directory tree by names, sizes and times.
func fingerprint(dir string) (string, error) {
	fsys, _, err := policyFS(dir)
	if err != nil {
		return "", err
	}
	h := newFingerprint()
	err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		h.add(p, info.Size(), info.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		return "", err
	}
	return h.sum(), nil
}

// verdict names a decision's outcome as telemetry does.
func verdict(allow bool) string {
	if allow {
		return OutcomeAllow
	}
	return OutcomeDeny
}
