package authz

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/trace"

	"github.com/migrant-health/mhg/gateway/auth"
)

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestDecide(t *testing.T) {
	t.Parallel()
	e := builtinEngine(t)
	withPurpose := func(r auth.Requester, p string) auth.Requester { r.PurposeOfUse = p; return r }
	breakGlass := func(r auth.Requester) auth.Requester { r.PurposeOfUse = "ETREAT"; r.BreakGlass = true; return r }
	patientDeny := Provision{ConsentID: "c1", Type: "deny"}
	migstatPermit := Provision{ConsentID: "c2", Type: "permit", Level: 1, ActorCountries: []string{"DE"}, Purposes: []string{"TREAT"}, SecurityLabels: []string{LabelMIGSTAT}}
	tests := []struct {
		name       string
		in         Input
		allow      bool
		reasons    []string
		agreements []string
		rules      []string // obligation rules expected, in any order
	}{
		{"DE clinician reads a DE source", queryInput(clinician("DE"), "Patient", "DE"), true, []string{"access.domestic"}, nil, nil},
		{"cross-border to NL under both agreements", queryInput(clinician("DE"), "Patient", "NL"), true, []string{"agreement.cross-border.permitted"}, []string{"de-nl-2024", "de-nl-ua-2025"}, nil},
		{"cross-border to UA under the multilateral", releaseInput(clinician("DE"), clinical("Condition"), "UA"), true, []string{"agreement.cross-border.permitted"}, []string{"de-nl-ua-2025"}, []string{"agreement.obligation.de-nl-ua-2025"}},
		{"US is domestic only", queryInput(clinician("DE"), "Patient", "US"), false, []string{"agreement.cross-border.no-agreement"}, nil, nil},
		{"no purpose", queryInput(withPurpose(clinician("DE"), ""), "Patient", "DE"), false, []string{"purpose.missing"}, nil, nil},
		{"GOV never contacts a source", queryInput(withPurpose(clinician("DE"), "GOV"), "Patient", "DE"), false, []string{"firewall.query.purpose-forbidden", "purpose.not-allowed-for-class"}, nil, nil},
		{"patient deny wins over the agreement", releaseInput(clinician("DE"), clinical("Condition"), "NL", patientDeny), false, []string{"consent.patient-deny"}, nil, nil},
		{"break-glass overrides the deny and notifies", releaseInput(breakGlass(clinician("DE")), clinical("Condition"), "NL", patientDeny), true, []string{"agreement.cross-border.permitted", "break-glass.consent-overridden", "break-glass.invoked"}, []string{"de-nl-ua-2025"}, []string{"agreement.obligation.de-nl-ua-2025", "break-glass.notify", "break-glass.notify"}},
		{"migration status without explicit consent", releaseInput(clinician("DE"), migrationContext(), "DE"), false, []string{"firewall.migstat.consent-missing"}, nil, nil},
		{"migration status with explicit consent", releaseInput(clinician("DE"), migrationContext(), "NL", Provision{ConsentID: "c0", Type: "deny"}, migstatPermit), true, []string{"agreement.cross-border.permitted"}, []string{"de-nl-2024", "de-nl-ua-2025"}, []string{"agreement.obligation.de-nl-2024", "agreement.obligation.de-nl-ua-2025", "firewall.migstat.labels"}},
		{"HIV label redacts free text", releaseInput(clinician("DE"), clinical("Condition", "HIV"), "DE"), true, []string{"access.domestic"}, nil, []string{"redaction.label.hiv", "redaction.sensitive.confidentiality"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := decide(t, e, tt.in)
			if d.Allow != tt.allow {
				t.Errorf("allow = %v, want %v (reasons %v)", d.Allow, tt.allow, d.Reasons)
			}
			if !slices.Equal(d.Reasons, tt.reasons) {
				t.Errorf("reasons = %v, want %v", d.Reasons, tt.reasons)
			}
			if !slices.Equal(d.Agreements, orEmpty(tt.agreements)) {
				t.Errorf("agreements = %v, want %v", d.Agreements, tt.agreements)
			}
			var rules []string
			for _, o := range d.Obligations {
				rules = append(rules, o.Rule)
			}
			slices.Sort(rules)
			want := slices.Clone(tt.rules)
			slices.Sort(want)
			if !slices.Equal(rules, want) {
				t.Errorf("obligation rules = %v, want %v", rules, want)
			}
			if d.Revision != "demo-2025.2" {
				t.Errorf("revision = %q", d.Revision)
			}
			if !uuidPattern.MatchString(d.ID) {
				t.Errorf("decision id %q is not a v4 UUID", d.ID)
			}
		})
	}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func TestDecisionIDsDiffer(t *testing.T) {
	t.Parallel()
	e := builtinEngine(t)
	a := decide(t, e, queryInput(clinician("DE"), "Patient", "DE"))
	b := decide(t, e, queryInput(clinician("DE"), "Patient", "DE"))
	if a.ID == b.ID {
		t.Errorf("two decisions share id %s", a.ID)
	}
}

// policyDir writes a one-file policy whose decision rule is body.
func policyDir(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, dir, ".manifest", `{"revision": "fixture"}`)
	writeFile(t, dir, "mhg/authz/main.rego", "package mhg.authz\n\n"+body+"\n")
	return dir
}

func TestDecideDeniesWhenThePolicyCannotDecide(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		policy string
		reason string
	}{
		{"undefined decision", `decision := {"allow": true, "reasons": [], "obligations": [], "agreements": []} if input.phase == "never"`, ReasonUndefined},
		{"conflicting decision", "decision := {\"allow\": true} if input.phase\n\ndecision := {\"allow\": false} if input.phase", ReasonError},
		{"allow is not a boolean", `decision := {"allow": "yes", "reasons": [], "obligations": [], "agreements": []}`, ReasonError},
		{"decision is not an object", `decision := true`, ReasonError},
		{"reasons are not strings", `decision := {"allow": true, "reasons": [1], "obligations": [], "agreements": []}`, ReasonError},
		{"unknown obligation", `decision := {"allow": true, "reasons": [], "obligations": [{"kind": "shred", "rule": "x"}], "agreements": []}`, ReasonError},
		{"empty redact obligation", `decision := {"allow": true, "reasons": [], "obligations": [{"kind": "redact", "rule": "x"}], "agreements": []}`, ReasonError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEngine(t, Options{Dir: policyDir(t, tt.policy)})
			d, err := e.Decide(context.Background(), queryInput(clinician("DE"), "Patient", "DE"))
			if !errors.Is(err, ErrEvaluation) {
				t.Errorf("err = %v, want ErrEvaluation", err)
			}
			if d.Allow || len(d.Obligations) != 0 {
				t.Errorf("decision %+v allows or obliges after an error", d)
			}
			if !slices.Equal(d.Reasons, []string{tt.reason}) {
				t.Errorf("reasons = %v, want [%s]", d.Reasons, tt.reason)
			}
			if d.Revision != "fixture" || d.ID == "" {
				t.Errorf("revision %q, id %q: both must be set", d.Revision, d.ID)
			}
		})
	}
}

func TestDecideWellFormedFixtureAllows(t *testing.T) {
	t.Parallel()
	// The fixture policy shape above is right when the values are: the
	// failures come from the values, not from the harness.
	e := newEngine(t, Options{Dir: policyDir(t, `decision := {"allow": true, "reasons": ["fixture"], "obligations": [{"kind": "notify", "target": "dpo", "rule": "x"}], "agreements": []}`)})
	d := decide(t, e, queryInput(clinician("DE"), "Patient", "DE"))
	if !d.Allow || d.Obligations[0].Target != "dpo" {
		t.Errorf("decision = %+v", d)
	}
}

func TestDecideCancelledContextDenies(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d, err := e.Decide(ctx, queryInput(clinician("DE"), "Patient", "DE"))
	if err == nil || d.Allow {
		t.Errorf("decision %+v, err %v: a cancelled evaluation must deny with an error", d, err)
	}
}

func TestNoPolicyDeniesEverything(t *testing.T) {
	t.Parallel()
	// A bundle server that never answers with a bundle: nothing is loaded.
	srv := bundleServer(t)
	srv.setStatus(503)
	e := newEngine(t, Options{BundleURL: srv.url(), PollInterval: time.Hour})
	waitFor(t, func() bool {
		return srv.requests() > 0 && e.Ready() != nil && strings.Contains(e.Ready().Error(), "503")
	})
	d, err := e.Decide(context.Background(), queryInput(clinician("DE"), "Patient", "DE"))
	if !errors.Is(err, ErrNoPolicy) {
		t.Errorf("err = %v, want ErrNoPolicy", err)
	}
	if d.Allow || d.Revision != RevisionNone || d.ID == "" || !slices.Equal(d.Reasons, []string{ReasonNoPolicy}) {
		t.Errorf("decision = %+v", d)
	}
	if err := e.Ready(); !errors.Is(err, ErrNoPolicy) {
		t.Errorf("Ready() = %v, want ErrNoPolicy", err)
	}
	if e.Revision() != RevisionNone {
		t.Errorf("Revision() = %q", e.Revision())
	}
}

func TestHotReload(t *testing.T) {
	t.Parallel()
	dir := copyBuiltin(t)
	e := newEngine(t, Options{Dir: dir, Watch: true, PollInterval: 20 * time.Millisecond})
	frQuery := queryInput(clinician("DE"), "Patient", "FR")
	if d := decide(t, e, frQuery); d.Allow {
		t.Fatal("DE to FR allowed before any agreement")
	}

	// A lawyer adds a DE-FR agreement and bumps the revision.
	addAgreement(t, dir, "de-fr-2026", "DE", "FR")
	writeFile(t, dir, ".manifest", `{"revision": "demo-2026.1", "roots": ["mhg", "data"]}`)
	waitFor(t, func() bool { return e.Revision() == "demo-2026.1" || e.Ready() != nil })
	if err := e.Ready(); err != nil {
		t.Fatalf("Ready() = %v", err)
	}
	if d := decide(t, e, frQuery); !d.Allow || !slices.Equal(d.Agreements, []string{"de-fr-2026"}) {
		t.Fatalf("after the new agreement: %+v", d)
	}

	// An agreement with the US contradicts the Rego tests (US is
	// domestic-only): the change is refused until the tests change too.
	t.Run("agreement that fails the tests", func(t *testing.T) {
		saved := readFile(t, dir, "data/agreements.json")
		addAgreement(t, dir, "de-us-2026", "DE", "US")
		waitFor(t, func() bool { return errors.Is(e.Ready(), ErrStalePolicy) })
		if !errors.Is(e.Ready(), ErrPolicyTests) || !strings.Contains(e.Ready().Error(), "test_us_is_domestic_only") {
			t.Errorf("Ready() = %v", e.Ready())
		}
		if d := decide(t, e, queryInput(clinician("DE"), "Patient", "US")); d.Allow {
			t.Errorf("DE to US allowed by a refused revision: %+v", d)
		}
		writeFile(t, dir, "data/agreements.json", saved)
		waitFor(t, func() bool { return e.Ready() == nil })
	})

	broken := []struct {
		name, file, content, want string
	}{
		{"syntax error", "mhg/authz/typo.rego", "package mhg.authz\n\ndeny contains \"x\" if {\n", "typo.rego"},
		{"failing test", "mhg/authz/typo_test.rego", "package mhg.authz_test\n\nimport data.mhg.authz\n\ntest_nothing_allowed if {\n\tnot authz.allow with input as query(clinician(\"DE\"), \"Patient\", \"DE\")\n}\n", "test_nothing_allowed"},
	}
	for _, b := range broken {
		t.Run(b.name, func(t *testing.T) {
			before := settledStatus(t, e)
			writeFile(t, dir, b.file, b.content)
			waitFor(t, func() bool { return errors.Is(e.Ready(), ErrStalePolicy) })
			if got := e.Revision(); got != "demo-2026.1" {
				t.Errorf("revision = %q, want the last good demo-2026.1", got)
			}
			if !strings.Contains(e.Ready().Error(), b.want) {
				t.Errorf("Ready() = %v does not name %s", e.Ready(), b.want)
			}
			if d := decide(t, e, frQuery); !d.Allow || d.Revision != "demo-2026.1" {
				t.Errorf("decision during the broken edit: %+v", d)
			}
			if st := e.Status(); st.LastError == "" || st.LoadedAt != before.LoadedAt {
				t.Errorf("status = %+v", st)
			}
			// The fix is picked up.
			if err := os.Remove(filepath.Join(dir, filepath.FromSlash(b.file))); err != nil {
				t.Fatal(err)
			}
			waitFor(t, func() bool { return e.Ready() == nil })
		})
	}
}

// addAgreement adds a TREAT agreement between two countries to the
// agreements file of dir.
func addAgreement(t *testing.T, dir, id string, parties ...string) {
	t.Helper()
	var doc struct {
		Agreements []Agreement `json:"agreements"`
	}
	if err := json.Unmarshal([]byte(readFile(t, dir, "data/agreements.json")), &doc); err != nil {
		t.Fatal(err)
	}
	doc.Agreements = append(doc.Agreements, Agreement{
		ID: id, Title: id, Kind: "bilateral", Parties: parties, Purposes: []string{"TREAT"},
		DataClasses: []string{"C"}, ResourceTypes: []string{"*"}, ValidFrom: "2020-01-01", ValidUntil: "2040-12-31",
		Obligations: []Obligation{},
	})
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "data/agreements.json", string(b))
}

func readFile(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitFor polls cond until it holds. The bound is generous on purpose: a
// reload runs the whole Rego test suite, which takes tens of seconds on a
// loaded machine under the race detector; the bound only stops a test that
// would never finish.
// settledStatus returns e's status once no reload has happened for half
// a second (25 poll intervals): a restored file may be picked up by a
// poll after the engine already reports ready, and a status taken before
// that reload is not the one a broken edit must leave alone.
func settledStatus(t *testing.T, e *Engine) Status {
	t.Helper()
	last := e.Status()
	stable := time.Now()
	waitFor(t, func() bool {
		st := e.Status()
		if !st.LoadedAt.Equal(last.LoadedAt) || st.LastError != last.LastError {
			last, stable = st, time.Now()
		}
		return time.Since(stable) >= 500*time.Millisecond
	})
	return last
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 2m")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestReloadWithoutChangeKeepsRevision(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{})
	before := e.Status()
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	after := e.Status()
	if after.Revision != before.Revision || after.Hash != before.Hash || after.Agreements != 5 {
		t.Errorf("status before %+v, after %+v", before, after)
	}
}

func TestDecisionLog(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	e := newEngine(t, Options{DecisionLog: &buf, Labels: map[string]string{"id": "replica-1"}})
	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled}))
	in := releaseInput(clinician("DE"), clinical("Condition"), "NL",
		Provision{ConsentID: "consent-of-a-patient", Type: "permit"},
		Provision{Type: "permit", Level: 1})
	d, err := e.Decide(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d log lines, want 1", len(lines))
	}
	if strings.Contains(lines[0], "consent-of-a-patient") {
		t.Error("the consent id reached the decision log")
	}
	var entry map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &entry); err != nil {
		t.Fatal(err)
	}
	checks := map[string]any{
		"decision_id":                        d.ID,
		"path":                               "mhg/authz/decision",
		"trace_id":                           traceID.String(),
		"labels.app":                         "mhg",
		"labels.id":                          "replica-1",
		"bundles.mhg.revision":               "demo-2025.2",
		"input.phase":                        "release",
		"input.requester.country":            "DE",
		"input.resource.type":                "Condition",
		"result.allow":                       true,
		"input.consent.0.consent_id":         "",
		"result.agreements.0":                "de-nl-2024",
		"erased.0":                           "/input/consent/0/consent_id",
		"input.requester.scopes.0":           "system/*.rs",
		"input.consent.1.actor_countries.#":  0.0,
		"result.obligations.0.labels.0.code": "NORDSCLCDS",
	}
	for path, want := range checks {
		if got := jsonAt(entry, path); got != want {
			t.Errorf("%s = %#v, want %#v", path, got, want)
		}
	}
	if _, ok := entry["erased"].([]any); !ok || len(entry["erased"].([]any)) != 1 {
		t.Errorf("erased = %v, want only the one consent id that was set", entry["erased"])
	}
	if ts, err := time.Parse(time.RFC3339Nano, entry["timestamp"].(string)); err != nil || time.Since(ts) > time.Minute {
		t.Errorf("timestamp %v: %v", entry["timestamp"], err)
	}
	if entry["metrics"].(map[string]any)["timer_rego_query_eval_ns"].(float64) <= 0 {
		t.Errorf("metrics = %v", entry["metrics"])
	}
	if in.Consent[0].ConsentID != "consent-of-a-patient" {
		t.Error("logging erased the caller's consent id")
	}
}

// jsonAt walks a decoded JSON value by a dotted path; "#" is a length.
func jsonAt(v any, path string) any {
	for _, part := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[part]
		case []any:
			if part == "#" {
				return float64(len(x))
			}
			i := 0
			for _, c := range part {
				i = i*10 + int(c-'0')
			}
			if i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	dir := copyBuiltin(t)
	e := newEngine(t, Options{Dir: dir, MeterProvider: mp})
	decide(t, e, queryInput(clinician("DE"), "Patient", "DE"))
	decide(t, e, queryInput(clinician("DE"), "Patient", "US"))
	decide(t, e, queryInput(clinician("DE"), "Patient", "US"))
	writeFile(t, dir, "mhg/authz/typo.rego", "package mhg.authz\n\nx := \n")
	if err := e.Reload(context.Background()); err == nil {
		t.Fatal("broken reload accepted")
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	sums := map[string]map[string]int64{}
	gauges := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch data := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range data.DataPoints {
					if sums[m.Name] == nil {
						sums[m.Name] = map[string]int64{}
					}
					sums[m.Name][attrString(dp.Attributes)] += dp.Value
				}
			case metricdata.Gauge[int64]:
				for _, dp := range data.DataPoints {
					gauges[m.Name] = dp.Value
				}
			case metricdata.Histogram[float64]:
				for _, dp := range data.DataPoints {
					gauges[m.Name+".count"] += int64(dp.Count)
				}
			}
		}
	}
	want := map[string]map[string]int64{
		MetricDecisions:       {"mhg.decision=allow,mhg.phase=query": 1, "mhg.decision=deny,mhg.phase=query": 2},
		MetricDecisionReasons: {"mhg.decision=allow,mhg.rule_id=access.domestic": 1, "mhg.decision=deny,mhg.rule_id=agreement.cross-border.no-agreement": 2},
		MetricReloads:         {"": 1},
		MetricReloadFailures:  {"stage=read": 1},
	}
	for name, points := range want {
		for attrs, v := range points {
			if got := sums[name][attrs]; got != v {
				t.Errorf("%s{%s} = %d, want %d (all: %v)", name, attrs, got, v, sums[name])
			}
		}
	}
	if gauges[MetricPolicyStale] != 1 {
		t.Errorf("%s = %d, want 1 after a failed reload", MetricPolicyStale, gauges[MetricPolicyStale])
	}
	if gauges[MetricDecisionDuration+".count"] != 3 {
		t.Errorf("%s count = %d, want 3", MetricDecisionDuration, gauges[MetricDecisionDuration+".count"])
	}
}

func attrString(set attribute.Set) string {
	var parts []string
	for _, kv := range set.ToSlice() {
		parts = append(parts, string(kv.Key)+"="+kv.Value.String())
	}
	return strings.Join(parts, ",")
}

func TestNewRejectsBadOptions(t *testing.T) {
	t.Parallel()
	for name, opts := range map[string]Options{
		"negative interval": {PollInterval: -time.Second},
		"relative bundle":   {BundleURL: "bundles/mhg.tar.gz"},
		"ftp bundle":        {BundleURL: "ftp://example.invalid/b.tar.gz"},
		"missing dir":       {Dir: "/nonexistent/policies"},
	} {
		t.Run(name, func(t *testing.T) {
			opts.Logger = quietLogger()
			if e, err := New(opts); err == nil {
				e.Close()
				t.Fatal("New accepted the options")
			}
		})
	}
}
