package authz

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"runtime"
	"slices"
	"testing/fstest"
	"text/tabwriter"
	"time"

	"go.opentelemetry.io/otel/metric/noop"

	"github.com/migrant-health/mhg/gateway/auth"
)

// BenchOptions configure Bench. The zero value measures the built-in
// policies grown to 200 agreements, with 20 consent provisions, 2,000
// decisions per row.
type BenchOptions struct {
	// Dir is the policy directory measured; empty means the built-in
	// policies.
	Dir string
	// Agreements are the agreement counts measured, each a row: the
	// policy's own agreements plus generated ones between countries the
	// measured request does not involve, up to that count. Nil means
	// {200}.
	Agreements []int
	// Provisions is the number of consent provisions in the release
	// input (at most 20). Zero means 20.
	Provisions int
	// Iterations is how many decisions each row measures. Zero means 2000.
	Iterations int
	// Memo adds, per agreement count, the same decisions served from the
	// decision memo (see Options.MemoEntries), as the gateway serves a
	// request identical to one decided before.
	Memo bool
}

// BenchRow is one measured policy and phase.
type BenchRow struct {
	// Policy says what was measured: "empty" (a constant decision, the
	// engine's own cost) or "N agreements" (the policy under test).
	Policy string `json:"policy"`
	// Phase is PhaseQuery or PhaseRelease.
	Phase string `json:"phase"`
	// Agreements and Provisions are the sizes measured (zero for empty).
	Agreements int `json:"agreements"`
	Provisions int `json:"provisions"`
	// P50 and P99 are latency percentiles of one decision.
	P50 time.Duration `json:"p50_ns"`
	P99 time.Duration `json:"p99_ns"`
	// Allocs and Bytes are heap allocations per decision.
	Allocs float64 `json:"allocs_per_decision"`
	Bytes  float64 `json:"bytes_per_decision"`
	// XEmpty is P50 over the empty policy's P50 in the same phase.
	XEmpty float64 `json:"x_empty"`
	// Allow is the decision, so a reader sees what the row measured.
	Allow bool `json:"allow"`
}

// BenchReport is what Bench measured, in one run.
type BenchReport struct {
	// Revision is the measured policy's revision (before agreements were
	// added).
	Revision string `json:"revision"`
	// Rows are the empty policy's rows first, then one per agreement count.
	Rows []BenchRow `json:"rows"`
}

// Bench measures the cost of a policy change: the latency (p50, p99) and
// allocations of a query decision and of a release decision with consent
// provisions, for a policy grown to each agreement count, next to an empty
// policy measured in the same run. The measured requests are a German
// clinician reading from a Dutch source, cross-border under the demo
// agreements; the generated agreements join other countries, so a policy
// whose lookups are indexed costs the same at 2,000 agreements as at 4.
// Bench compiles but does not test the policies (`mhg policy test` does).
func Bench(ctx context.Context, opts BenchOptions) (*BenchReport, error) {
	if opts.Agreements == nil {
		opts.Agreements = []int{200}
	}
	if opts.Provisions == 0 {
		opts.Provisions = 20
	}
	if opts.Iterations <= 0 {
		opts.Iterations = 2000
	}
	if opts.Provisions < 0 || opts.Provisions > 20 {
		return nil, fmt.Errorf("authz bench: provisions %d: from 0 to 20", opts.Provisions)
	}
	fsys, _, err := policyFS(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("authz bench: %w", err)
	}
	base, err := loadFS(fsys)
	if err != nil {
		return nil, fmt.Errorf("authz bench: %w", err)
	}
	rep := &BenchReport{Revision: base.revision}
	inputs := []Input{BenchQueryInput(), BenchReleaseInput(opts.Provisions)}

	empty, err := benchEngine(ctx, emptyPolicyFS())
	if err != nil {
		return nil, err
	}
	baseline := map[string]time.Duration{}
	for _, in := range inputs {
		row, err := measure(ctx, empty, in, opts.Iterations)
		if err != nil {
			return nil, err
		}
		row.Policy = "empty"
		row.Provisions = len(in.Consent)
		baseline[in.Phase] = row.P50
		row.XEmpty = 1
		rep.Rows = append(rep.Rows, row)
	}
	for _, n := range opts.Agreements {
		grown, err := WithAgreements(fsys, n)
		if err != nil {
			return nil, fmt.Errorf("authz bench: %w", err)
		}
		e, err := benchEngine(ctx, grown)
		if err != nil {
			return nil, err
		}
		engines := []*Engine{e}
		if opts.Memo {
			engines = append(engines, e.withMemo(DefaultMemoEntries))
		}
		for i, in := range slices.Concat(inputs, inputs)[:len(inputs)*len(engines)] {
			e := engines[i/len(inputs)]
			row, err := measure(ctx, e, in, opts.Iterations)
			if err != nil {
				return nil, err
			}
			row.Policy = fmt.Sprintf("%d agreements", max(n, len(base.agreements)))
			if i >= len(inputs) {
				row.Policy += ", memo"
			}
			row.Agreements = max(n, len(base.agreements))
			row.Provisions = len(in.Consent)
			if b := baseline[in.Phase]; b > 0 {
				row.XEmpty = float64(row.P50) / float64(b)
			}
			rep.Rows = append(rep.Rows, row)
		}
	}
	return rep, nil
}

// Write prints the report as a table.
func (r *BenchReport) Write(w io.Writer) {
	fmt.Fprintf(w, "policy revision %s\n", r.Revision)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "policy\tphase\tprovisions\tp50 µs\tp99 µs\tallocs\tKiB\tx empty\tdecision\t")
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.1f\t%.1f\t%.0f\t%.1f\t%.2f\t%s\t\n",
			row.Policy, row.Phase, row.Provisions,
			float64(row.P50.Nanoseconds())/1e3, float64(row.P99.Nanoseconds())/1e3,
			row.Allocs, row.Bytes/1024, row.XEmpty, verdict(row.Allow))
	}
	tw.Flush()
}

// measure decides in n times and reports percentiles and allocations.
func measure(ctx context.Context, e *Engine, in Input, n int) (BenchRow, error) {
	// Warm up: the first decisions fill OPA's caches.
	for range min(n/10+1, 100) {
		if _, err := e.Decide(ctx, in); err != nil {
			return BenchRow{}, fmt.Errorf("authz bench: %w", err)
		}
	}
	durs := make([]time.Duration, n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var d Decision
	for i := range n {
		start := time.Now()
		var err error
		if d, err = e.Decide(ctx, in); err != nil {
			return BenchRow{}, fmt.Errorf("authz bench: %w", err)
		}
		durs[i] = time.Since(start)
	}
	runtime.ReadMemStats(&after)
	slices.Sort(durs)
	return BenchRow{
		Phase:  in.Phase,
		P50:    durs[n/2],
		P99:    durs[min(n-1, n*99/100)],
		Allocs: float64(after.Mallocs-before.Mallocs) / float64(n),
		Bytes:  float64(after.TotalAlloc-before.TotalAlloc) / float64(n),
		Allow:  d.Allow,
	}, nil
}

// benchEngine compiles a policy file system (without running its tests)
// into an engine that logs and measures nothing.
func benchEngine(ctx context.Context, fsys fs.FS) (*Engine, error) {
	set, err := loadFS(fsys)
	if err != nil {
		return nil, fmt.Errorf("authz bench: %w", err)
	}
	c, err := compileServing(ctx, set)
	if err != nil {
		return nil, fmt.Errorf("authz bench: %w", err)
	}
	opts := Options{
		Logger:        slog.New(slog.DiscardHandler),
		MeterProvider: noop.NewMeterProvider(),
	}
	e, err := newBare(opts)
	if err != nil {
		return nil, fmt.Errorf("authz bench: %w", err)
	}
	e.cur.Store(c)
	close(e.done)
	return e, nil
}

// emptyPolicyFS is a policy that denies everything without looking at the
// input: what the engine costs with no policy to speak of.
func emptyPolicyFS() fs.FS {
	return fstest.MapFS{
		".manifest": {Data: []byte(`{"revision": "empty"}`)},
		"mhg/authz/main.rego": {Data: []byte("package mhg.authz\n\ndecision := {\"allow\": false, \"reasons\": [\"default.no-basis\"], " +
			"\"obligations\": [], \"agreements\": []}\n")},
	}
}

// benchCountries are parties of generated agreements; they avoid the
// countries of the demo set, whose Rego tests must keep passing and whose
// agreements decide the measured requests.
var benchCountries = []string{
	"AT", "BE", "BG", "CH", "CY", "CZ", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE",
	"IS", "IT", "LI", "LT", "LU", "LV", "MT", "NO", "PL", "PT", "RO", "SE", "SI", "SK", "TR",
	"MD", "GE", "AM", "AL", "RS", "BA", "ME", "MK", "SY", "AF",
}

// WithAgreements returns fsys with generated agreements added to
// data/agreements.json until it holds n (none when it already does). The
// generated agreements are bilateral or multilateral between countries of
// a fixed list that leaves out the demo set's, with varied purposes and
// consent requirements.
func WithAgreements(fsys fs.FS, n int) (fs.FS, error) {
	out := fstest.MapFS{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		out[p] = &fstest.MapFile{Data: b}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var doc struct {
		Agreements []Agreement `json:"agreements"`
	}
	if f, ok := out["data/agreements.json"]; ok {
		if err := json.Unmarshal(f.Data, &doc); err != nil {
			return nil, fmt.Errorf("data/agreements.json: %w", err)
		}
	}
	purposes := [][]string{{"TREAT", "COC"}, {"TREAT", "COC", "ETREAT"}, {"PUBHLTH"}, {"TREAT"}}
	for i := len(doc.Agreements); i < n; i++ {
		a := Agreement{
			ID: fmt.Sprintf("generated-%04d", i), Title: "generated", Kind: "bilateral",
			Parties:       []string{benchCountries[i%len(benchCountries)], benchCountries[(i*7+3)%len(benchCountries)]},
			Purposes:      purposes[i%len(purposes)],
			DataClasses:   []string{"C"},
			ResourceTypes: []string{"Patient", "Condition", "Observation"},
			ValidFrom:     "2024-01-01", ValidUntil: "2034-12-31",
			ExplicitConsentRequired: i%3 == 0,
			Obligations:             []Obligation{},
		}
		if a.Parties[0] == a.Parties[1] {
			a.Kind = "multilateral"
			a.Parties = []string{a.Parties[0], benchCountries[(i+1)%len(benchCountries)], benchCountries[(i+2)%len(benchCountries)]}
		}
		doc.Agreements = append(doc.Agreements, a)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	out["data/agreements.json"] = &fstest.MapFile{Data: b}
	return out, nil
}

// BenchQueryInput is the query decision Bench measures: a German
// clinician asking a Dutch source for a Patient, for treatment.
func BenchQueryInput() Input {
	return Input{
		Phase: PhaseQuery,
		Requester: auth.Requester{
			ClientID: "ehr-de", Org: "org-de-hospital", Country: "DE", Role: "clinician",
			PurposeOfUse: "TREAT", Scopes: []string{"system/*.rs"},
		},
		Action: Action{Interaction: "read", ResourceType: "Patient"},
		Source: &Source{ID: "nl-sample", Country: "NL"},
	}
}

// BenchReleaseInput is the release decision Bench measures: a Condition
// labelled HIV from the Dutch source to the German clinician, with the
// first n of 20 consent provisions that apply in part to the request
// (denies for other countries, purposes and labels, permits nested under
// them), so that every provision is looked at.
func BenchReleaseInput(n int) Input {
	in := BenchQueryInput()
	in.Phase = PhaseRelease
	in.Action.ResourceType = "Condition"
	in.Resource = &Resource{Type: "Condition", Class: ClassClinical,
		Security: []Coding{{System: "http://terminology.hl7.org/CodeSystem/v3-ActCode", Code: "HIV"}}}
	var ps []Provision
	ps = append(ps, Provision{ConsentID: "c", Type: "deny", Start: "2020-01-01", End: "2040-12-31"})
	for i, c := range []string{"FR", "BE", "AT", "PL", "UA", "IT", "ES", "SE", "NO"} {
		ps = append(ps, Provision{ConsentID: "c", Type: "permit", Level: 1, ActorCountries: []string{c, "DE"},
			Purposes: []string{"TREAT", "COC"}, Classes: []string{"Condition", "Observation", "Patient"}, Start: fmt.Sprintf("202%d", i%5)})
	}
	for _, l := range []string{"PSY", "SUD", "ETH", "SDV", "SEX", "STD"} {
		ps = append(ps, Provision{ConsentID: "c", Type: "deny", Level: 2, SecurityLabels: []string{l}, ActorCountries: []string{"NL"}})
	}
	for _, p := range []string{"HRESCH", "PUBHLTH", "HOPERAT", "GOV"} {
		ps = append(ps, Provision{ConsentID: "c", Type: "deny", Level: 2, Purposes: []string{p}, End: "2040-06"})
	}
	in.Consent = ps[:n]
	return in
}

// withMemo returns an engine deciding with e's revision and a memo of
// size entries.
func (e *Engine) withMemo(size int) *Engine {
	c := *e.cur.Load()
	c.memo = newMemo(size, c.set.agreements)
	m, _ := newBare(e.opts)
	m.cur.Store(&c)
	close(m.done)
	return m
}
