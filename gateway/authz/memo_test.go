package authz

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// testClock is a settable clock for Options.Now.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func at(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// memoLen is how many decisions the active revision has memoized.
func memoLen(e *Engine) int {
	c := e.cur.Load()
	if c == nil || c.memo == nil {
		return 0
	}
	c.memo.entries.CleanUp()
	return c.memo.entries.EstimatedSize()
}

// A memoized decision is the decision: for a spread of inputs, an engine
// with the memo answers what one without it answers, the first time and
// the second (from the memo), each with its own decision id.
func TestMemoSameDecisions(t *testing.T) {
	t.Parallel()
	with := newEngine(t, Options{})
	without := newEngine(t, Options{MemoEntries: -1})
	inputs := []Input{
		BenchQueryInput(),
		BenchReleaseInput(20),
		BenchReleaseInput(1),
		queryInput(clinician("DE"), "Patient", "UA"),
		releaseInput(clinician("NL"), migrationContext(), "DE"),
		releaseInput(clinician("DE"), clinical("Condition", "PSY"), "NL", Provision{Type: "deny", SecurityLabels: []string{"PSY"}}),
	}
	for i, in := range inputs {
		want := decide(t, without, in)
		first := decide(t, with, in)
		second := decide(t, with, in)
		for _, got := range []Decision{first, second} {
			if got.Allow != want.Allow || !slices.Equal(got.Reasons, want.Reasons) ||
				!slices.Equal(got.Agreements, want.Agreements) || len(got.Obligations) != len(want.Obligations) {
				t.Errorf("input %d: memoized %+v, evaluated %+v", i, got, want)
			}
		}
		if first.ID == second.ID {
			t.Errorf("input %d: two decisions share the id %s", i, first.ID)
		}
	}
	if n := memoLen(with); n != len(inputs) {
		t.Errorf("memo holds %d decisions, want %d", n, len(inputs))
	}
	if n := memoLen(without); n != 0 {
		t.Errorf("memo off holds %d decisions", n)
	}
	// Callers may change what they get; the memo must not see it.
	d := decide(t, with, inputs[1])
	d.Reasons[0] = "changed"
	if again := decide(t, with, inputs[1]); again.Reasons[0] == "changed" {
		t.Error("a caller's change to a decision reached the memo")
	}
}

// A consent change takes effect on the next request: the provisions are
// part of the memo key.
func TestMemoConsentChange(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{})
	in := releaseInput(clinician("DE"), clinical("Condition"), "NL",
		Provision{ConsentID: "c1", Type: "permit", ActorCountries: []string{"DE"}})
	for range 2 {
		if d := decide(t, e, in); !d.Allow {
			t.Fatalf("permitted release denied: %+v", d)
		}
	}
	in.Consent = []Provision{{ConsentID: "c1", Type: "deny"}}
	if d := decide(t, e, in); d.Allow || !slices.Contains(d.Reasons, "consent.patient-deny") {
		t.Fatalf("release after the patient's deny: %+v", d)
	}
}

// A new revision takes effect on the next request: each revision has its
// own memo.
func TestMemoNewRevision(t *testing.T) {
	t.Parallel()
	dir := copyBuiltin(t)
	e := newEngine(t, Options{Dir: dir})
	in := BenchQueryInput()
	in.Requester.ClientID = "memo-test-client"
	for range 2 {
		if d := decide(t, e, in); !d.Allow {
			t.Fatalf("query denied: %+v", d)
		}
	}
	// The legal team adds a rule that denies this client.
	writeFile(t, dir, "mhg/authz/memotest.rego", "package mhg.authz\n\n"+
		"deny contains \"memo-test.client-blocked\" if input.requester.client_id == \"memo-test-client\"\n")
	writeFile(t, dir, ".manifest", `{"revision": "memo-test-2"}`)
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	d := decide(t, e, in)
	if d.Revision != "memo-test-2" {
		t.Fatalf("revision %s", d.Revision)
	}
	if d.Allow || !slices.Contains(d.Reasons, "memo-test.client-blocked") {
		t.Fatalf("decision after the new revision: %+v", d)
	}
}

// A memoized decision expires at the next validity boundary: an agreement
// entering force, a consent provision starting; and a clock set back does
// not reuse a decision taken later.
func TestMemoValidityBoundaries(t *testing.T) {
	t.Parallel()
	clock := &testClock{t: at(t, "2024-12-31T23:59:30Z")}
	e := newEngine(t, Options{Now: clock.now})
	in := BenchQueryInput()
	if d := decide(t, e, in); !slices.Equal(d.Agreements, []string{"de-nl-2024"}) {
		t.Fatalf("before de-nl-ua-2025: %+v", d)
	}
	clock.set(at(t, "2024-12-31T23:59:50Z"))
	if d := decide(t, e, in); !slices.Equal(d.Agreements, []string{"de-nl-2024"}) {
		t.Fatalf("still before de-nl-ua-2025: %+v", d)
	}
	clock.set(at(t, "2025-01-01T00:00:05Z"))
	if d := decide(t, e, in); !slices.Equal(d.Agreements, []string{"de-nl-2024", "de-nl-ua-2025"}) {
		t.Fatalf("five seconds after de-nl-ua-2025 entered force: %+v", d)
	}
	clock.set(at(t, "2024-12-31T23:59:55Z"))
	if d := decide(t, e, in); !slices.Equal(d.Agreements, []string{"de-nl-2024"}) {
		t.Fatalf("clock set back: %+v", d)
	}

	// The patient's deny starts at noon.
	rel := releaseInput(clinician("DE"), clinical("Condition"), "NL",
		Provision{ConsentID: "c", Type: "deny", Start: "2026-06-01T12:00:00Z"})
	clock.set(at(t, "2026-06-01T11:59:50Z"))
	for range 2 {
		if d := decide(t, e, rel); !d.Allow {
			t.Fatalf("before the deny starts: %+v", d)
		}
	}
	clock.set(at(t, "2026-06-01T12:00:01Z"))
	if d := decide(t, e, rel); d.Allow {
		t.Fatalf("after the deny started: %+v", d)
	}

	// With no boundary near, a decision is reused for a minute at most.
	m := e.cur.Load().memo
	now := at(t, "2027-03-01T10:00:00Z")
	if got := m.expiry(in, now); !got.Equal(now.Add(MaxMemoTTL)) {
		t.Errorf("expiry %s, want %s", got, now.Add(MaxMemoTTL))
	}
	// A partial end date ends after its last day.
	end := Provision{Type: "deny", End: "2027-03"}
	if got := m.expiry(Input{Consent: []Provision{end}}.normalized(), at(t, "2027-03-31T23:59:30Z")); !got.Equal(at(t, "2027-04-01T00:00:00Z")) {
		t.Errorf("expiry before a partial end: %s", got)
	}
}

// The memo is bounded.
func TestMemoBounded(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Options{MemoEntries: 3})
	for _, c := range []string{"NL", "UA", "DE", "FR", "PL"} {
		decide(t, e, queryInput(clinician("DE"), "Patient", c))
	}
	if n := memoLen(e); n != 3 {
		t.Fatalf("memo holds %d decisions, bound 3", n)
	}
}
