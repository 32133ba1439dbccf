package server

import (
	"net/url"
	"strings"
	"testing"
)

// A national server that throttles (429 with Retry-After: 1 on the first
// call of every path) is waited for with the default settings (no
// retries): every answer is complete, no warning, and its breaker stays
// closed although far more than its failure threshold of paths were
// throttled.
func TestThrottledSourceGivesCompleteAnswers(t *testing.T) {
	t.Parallel()
	de, nl, _, edit := nationalSources(t)
	g := startGateway(t, edit, Options{})
	tok := g.token(t, "DE", "clinician", "TREAT")
	de.mode.Store("throttle-first")
	nl.mode.Store("throttle-first")

	r := g.get(t, "/Patient?identifier="+aminaPassport, tok)
	if got := sourcesOf(r.entries("match")); r.status != 200 || got["de-kbv"] != 1 || got["nl-lsp"] != 1 {
		t.Fatalf("search: %d %v %s", r.status, got, r.body)
	}
	if strings.Contains(string(r.body), "could not contribute") || strings.Contains(string(r.body), "throttled") {
		t.Fatalf("a throttled source was reported missing: %s", r.body)
	}
	doc := g.get(t, "/Patient/$summary?identifier="+url.QueryEscape(aminaPassport), tok)
	if doc.status != 200 || strings.Contains(string(doc.body), "could not contribute") {
		t.Fatalf("$summary: %d %s", doc.status, doc.body)
	}
	if de.throttles.Load() < 6 || nl.throttles.Load() < 6 {
		t.Fatalf("only %d and %d throttled answers: the test did not throttle more paths than the breaker tolerates", de.throttles.Load(), nl.throttles.Load())
	}
	m := g.scrape(t)
	for _, id := range []string{"de-kbv", "nl-lsp"} {
		if v, ok := sumSeries(m, "mhg_source_breaker_state", `mhg_source_id="`+id+`"`); !ok || v != 0 {
			t.Errorf("breaker state of %s after throttling: %v (present %v), want 0 (closed)", id, v, ok)
		}
		if v, ok := sumSeries(m, "mhg_source_throttle_wait_seconds_count", `mhg_source_id="`+id+`"`); !ok || v < 6 {
			t.Errorf("throttle waits of %s: %v (present %v), want at least 6", id, v, ok)
		}
	}
	// With the throttling over, both sources still answer (nothing was
	// refused by an open breaker).
	de.mode.Store("")
	nl.mode.Store("")
	r = g.get(t, "/Patient?identifier="+aminaPassport, tok)
	if got := sourcesOf(r.entries("match")); r.status != 200 || got["de-kbv"] != 1 || got["nl-lsp"] != 1 {
		t.Fatalf("after throttling: %d %v %s", r.status, got, r.body)
	}
}

// A source that asks for longer than the request can wait gives a
// throttled warning beside the other source's answer; when every source
// does, the gateway answers 503 with Retry-After.
func TestThrottledPastTheDeadline(t *testing.T) {
	de, nl, _, edit := nationalSources(t)
	g := startGateway(t, edit, Options{})
	tok := g.token(t, "DE", "clinician", "TREAT")
	search := "/Patient?identifier=" + aminaPassport

	nl.mode.Store("throttle")
	r := g.get(t, search, tok)
	if got := sourcesOf(r.entries("match")); r.status != 200 || got["de-kbv"] != 1 || got["nl-lsp"] != 0 {
		t.Fatalf("one throttled: %d %v %s", r.status, got, r.body)
	}
	if !strings.Contains(string(r.body), `"code":"throttled"`) || !strings.Contains(string(r.body), "source nl-lsp asked the gateway to wait") {
		t.Fatalf("no throttled warning for nl-lsp: %s", r.body)
	}

	de.mode.Store("throttle")
	r = g.get(t, search, tok)
	if r.status != 503 || r.outcomeCode(t) != "throttled" {
		t.Fatalf("all throttled: %d %s", r.status, r.body)
	}
	if ra := r.header.Get("Retry-After"); ra != "120" {
		t.Errorf("Retry-After = %q, want 120 (what the sources asked for)", ra)
	}
	if v, ok := sumSeries(g.scrape(t), "mhg_source_breaker_state", `mhg_source_id="de-kbv"`); !ok || v != 0 {
		t.Errorf("breaker state of de-kbv: %v (present %v), want 0 (closed)", v, ok)
	}
}

// One resource a source cannot send as valid R4 is left out with an
// incomplete warning naming the source; the rest of its page is kept.
// Given names with null placeholders in "_given" are valid R4 and come
// through.
func TestUpstreamResourceForms(t *testing.T) {
	t.Parallel()
	de, nl, _, edit := nationalSources(t)
	g := startGateway(t, edit, Options{})
	tok := g.token(t, "DE", "clinician", "TREAT")
	search := "/Patient?identifier=" + aminaPassport

	nl.mode.Store("primitive-extensions")
	de.mode.Store("primitive-extensions")
	r := g.get(t, search, tok)
	if got := sourcesOf(r.entries("match")); r.status != 200 || got["de-kbv"] != 1 || got["nl-lsp"] != 1 {
		t.Fatalf("_given with null placeholders: %d %v %s", r.status, got, r.body)
	}
	if strings.Contains(string(r.body), "could not contribute") {
		t.Fatalf("a source with valid primitive extensions was reported: %s", r.body)
	}

	de.mode.Store("")
	nl.mode.Store("one-invalid")
	r = g.get(t, search, tok)
	if got := sourcesOf(r.entries("match")); r.status != 200 || got["de-kbv"] != 1 || got["nl-lsp"] != 1 {
		t.Fatalf("one invalid resource: %d %v %s", r.status, got, r.body)
	}
	if !strings.Contains(string(r.body), `"code":"incomplete"`) || !strings.Contains(string(r.body), "source nl-lsp returned resources that are not valid FHIR R4") {
		t.Fatalf("no incomplete warning naming nl-lsp: %s", r.body)
	}
}

// An allergy asserted by a contained RelatedPerson keeps it through
// mapping; a contained Patient (not passed on) leaves the recorder
// display-only with a loss issue. get checks dom-3 on every answer.
func TestContainedResourcesSurvive(t *testing.T) {
	t.Parallel()
	de, _, _, edit := nationalSources(t)
	g := startGateway(t, edit, Options{})
	tok := g.token(t, "DE", "clinician", "TREAT")
	de.mode.Store("contained")
	r := g.get(t, "/Patient?identifier="+aminaPassport, tok)
	var pid string
	for _, p := range r.entries("match") {
		if id, _ := p["id"].(string); strings.HasPrefix(id, "de-kbv.") {
			pid = id
		}
	}
	if pid == "" {
		t.Fatalf("no de-kbv patient: %s", r.body)
	}
	a := g.get(t, "/AllergyIntolerance?patient="+pid, tok)
	allergies := a.entries("match")
	if a.status != 200 || len(allergies) == 0 {
		t.Fatalf("allergies: %d %s", a.status, a.body)
	}
	for _, al := range allergies {
		asserter, _ := al["asserter"].(map[string]any)
		contained, _ := al["contained"].([]any)
		if asserter["reference"] != "#rp1" || len(contained) != 1 {
			t.Errorf("contained asserter lost: %v", al)
		}
		recorder, _ := al["recorder"].(map[string]any)
		if _, has := recorder["reference"]; has || recorder["display"] != "the patient" {
			t.Errorf("recorder pointing at a contained Patient is not display-only: %v", recorder)
		}
	}
	if !strings.Contains(string(a.body), "only the reference's display remains") {
		t.Errorf("the loss report does not say the reference was cut: %s", a.body)
	}
	doc := g.get(t, "/Patient/"+pid+"/$summary", tok)
	if doc.status != 200 || !strings.Contains(string(doc.body), `"reference":"#rp1"`) {
		t.Fatalf("$summary: %d %s", doc.status, doc.body)
	}
}

// A source that merged two records of the migrant: $summary by identifier
// finds both and answers with one person, the surviving record's data,
// and says how the records were linked; the $summary of the replaced
// record is the surviving record's, never an empty document.
func TestMergedPatientSummary(t *testing.T) {
	t.Parallel()
	de, _, _, edit := nationalSources(t)
	g := startGateway(t, edit, Options{})
	tok := g.token(t, "DE", "clinician", "TREAT")
	de.mode.Store("merged")

	r := g.get(t, "/Patient?identifier="+aminaPassport, tok)
	var replaced string
	for _, p := range r.entries("match") {
		if strings.Contains(string(mustMarshal(t, p)), "Oldrecord") {
			replaced, _ = p["id"].(string)
		}
	}
	if r.status != 200 || replaced == "" {
		t.Fatalf("search does not list the replaced record: %d %s", r.status, r.body)
	}
	for _, path := range []string{
		"/Patient/$summary?identifier=" + url.QueryEscape(aminaPassport),
		"/Patient/" + replaced + "/$summary",
	} {
		doc := g.get(t, path, tok)
		if doc.status != 200 {
			t.Fatalf("%s: %d %s", path, doc.status, doc.body)
		}
		body := string(doc.body)
		if strings.Contains(body, "Oldrecord") || !strings.Contains(body, "Seitumerova") {
			t.Errorf("%s: not the surviving record's data: %s", path, body)
		}
		if !strings.Contains(body, "had merged this person's records") {
			t.Errorf("%s: nothing says how the records were linked: %s", path, body)
		}
		if !strings.Contains(body, "Condition") {
			t.Errorf("%s: the surviving record's conditions are missing", path)
		}
	}
}
