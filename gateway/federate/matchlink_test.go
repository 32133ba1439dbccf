package federate

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/migrant-health/mhg/gateway/authz"
	"github.com/migrant-health/mhg/gateway/federate/federatetest"
	"github.com/migrant-health/mhg/gateway/match"
	"github.com/migrant-health/mhg/gateway/source"
	"github.com/migrant-health/mhg/mappings"
)

// Records of one man, Oleksandr Shevchenko, kept without a shared
// identifier: the summary may link them by demographics only when the
// match is certain.
var matchLinkSources = []struct{ id, country, records string }{
	{"a", "DE", `{"resourceType":"Patient","id":"a1","identifier":[{"system":"http://fhir.de/sid/gkv/kvid-10","value":"X110411675"}],"name":[{"family":"Schewtschenko","given":["Oleksandr"]}],"gender":"male","birthDate":"1980-05-03"}`},
	// Same man in Cyrillic, same birth date: certain.
	{"u", "UA", `{"resourceType":"Patient","id":"u1","name":[{"family":"Шевченко","given":["Олександр","Петрович"]}],"gender":"male","birthDate":"1980-05-03"}
{"resourceType":"Condition","id":"u1c","subject":{"reference":"Patient/u1"},"code":{"text":"Hypertension"},"clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"active"}]}}`},
	// A year of birth only: probable, never merged.
	{"n", "NL", `{"resourceType":"Patient","id":"n1","name":[{"family":"Sjevtsjenko","given":["Oleksandr"]}],"gender":"male","birthDate":"1980"}`},
	// Two records equally certain: ambiguous, neither linked.
	{"p", "PL", `{"resourceType":"Patient","id":"p1","name":[{"family":"Szewczenko","given":["Oleksandr"]}],"gender":"male","birthDate":"1980-05-03"}
{"resourceType":"Patient","id":"p2","name":[{"family":"Shevchenko","given":["Oleksandr"]}],"gender":"male","birthDate":"1980-05-03"}`},
}

func newMatchLinkFixture(t *testing.T, allowMatch bool) (*Linker, *Service) {
	t.Helper()
	eng, err := mappings.Load()
	if err != nil {
		t.Fatal(err)
	}
	var srcs []Source
	for _, s := range matchLinkSources {
		dir := filepath.Join(t.TempDir(), s.id)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "records.ndjson"), []byte(s.records+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		b, err := source.OpenBundle(source.Options{ID: s.id, Country: s.country, Profile: "ips", Kind: source.KindBundle, Dir: dir, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, b)
	}
	d := &federatetest.Decider{Fn: func(in authz.Input) (authz.Decision, error) {
		if in.Action.Operation == "match" && in.Phase == authz.PhaseQuery {
			if !allowMatch {
				return authz.Decision{Reasons: []string{"test.match-refused"}}, nil
			}
			if in.Match == nil || len(in.Match.Traits) == 0 {
				t.Errorf("a demographic link was decided without the trait kinds")
			}
			return authz.Decision{Allow: true, Reasons: []string{"test.allow"}, Obligations: []authz.Obligation{{
				Kind: authz.ObligationMatch, Traits: in.Match.Traits, Grade: "possible", Rule: "test.match"}}}, nil
		}
		return authz.Decision{Allow: true, Reasons: []string{"test.allow"}}, nil
	}}
	svc, err := New(Options{Sources: srcs, Mapper: eng, Decider: d, IDs: testCodec(t), Deadline: 5 * time.Second, SourceTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewLinker(svc, LinkerOptions{Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	return l, svc
}

func TestSummaryLinksOnlyCertainMatches(t *testing.T) {
	t.Parallel()
	l, svc := newMatchLinkFixture(t, true)
	anchor, _ := svc.opts.IDs.Encode("a", "Patient", "a1")
	res, doc, err := l.Summary(context.Background(), deClinician, SummaryRequest{Patient: PatientQuery{ID: anchor}, BaseURL: "http://gw/fhir"})
	if err != nil {
		t.Fatal(err)
	}
	d := takeApart(t, doc)
	if got := d.sourcesOf("Patient"); got["a"] != 1 || got["u"] != 1 || got["n"] != 0 || got["p"] != 0 {
		t.Errorf("the Patient merges records of %v; want a (asked for) and u (certain match) only", got)
	}
	if got := d.sourcesOf("Condition"); got["u"] != 1 {
		t.Errorf("the Ukrainian record's Condition is missing: %v", got)
	}
	text := d.comp["text"].(map[string]any)["div"].(string)
	for _, want := range []string{"How the records were linked", "DE (a): the record asked for", "UA (u): demographic match, grade certain"} {
		if !strings.Contains(text, want) {
			t.Errorf("the Composition narrative lacks %q: %s", want, text)
		}
	}
	if !strings.Contains(d.outcome, "record of source u (UA) linked: demographic match, grade certain") {
		t.Errorf("the OperationOutcome does not say how u was linked: %s", d.outcome)
	}
	if !strings.Contains(d.outcome, "source p (PL) holds more than one person") {
		t.Errorf("the ambiguous source is not named: %s", d.outcome)
	}
	if strings.Contains(d.outcome, "source n") || strings.Contains(text, "(n)") {
		t.Errorf("the probable record shows in the document: %s", d.outcome)
	}
	// Every demographic link was decided as a match, with the trait kinds.
	matchDecisions := 0
	for _, dr := range res.Decisions {
		if dr.Phase == authz.PhaseQuery && dr.Decision.Allow && len(dr.Decision.Obligations) > 0 && dr.Decision.Obligations[0].Kind == authz.ObligationMatch {
			matchDecisions++
		}
	}
	if matchDecisions != 3 {
		t.Errorf("%d match decisions, want one for each of u, n and p", matchDecisions)
	}

	// The clinician confirms the probable record by asking for its own
	// summary: it anchors there, and the certain records link to it only
	// if they are certain matches of it (a year of birth cannot be).
	probable, _ := svc.opts.IDs.Encode("n", "Patient", "n1")
	_, doc, err = l.Summary(context.Background(), deClinician, SummaryRequest{Patient: PatientQuery{ID: probable}, BaseURL: "http://gw/fhir"})
	if err != nil {
		t.Fatal(err)
	}
	d = takeApart(t, doc)
	if got := d.sourcesOf("Patient"); got["n"] != 1 || len(got) != 1 {
		t.Errorf("the summary of the confirmed probable record merges %v; want n alone", got)
	}
	if !strings.Contains(d.comp["text"].(map[string]any)["div"].(string), "NL (n): the record asked for") {
		t.Error("the confirmed record is not named as the record asked for")
	}
}

func TestSummaryWithoutMatchPermissionLinksNoDemographics(t *testing.T) {
	t.Parallel()
	l, svc := newMatchLinkFixture(t, false)
	anchor, _ := svc.opts.IDs.Encode("a", "Patient", "a1")
	_, doc, err := l.Summary(context.Background(), deClinician, SummaryRequest{Patient: PatientQuery{ID: anchor}, BaseURL: "http://gw/fhir"})
	if err != nil {
		t.Fatal(err)
	}
	if got := takeApart(t, doc).sourcesOf("Patient"); len(got) != 1 || got["a"] != 1 {
		t.Errorf("without permission to search by demographics the Patient merges %v; want a alone", got)
	}
}

// The policy decides demographic linking without seeing the record (every
// trait kind is claimed); a source whose rules require a kind the anchor's
// record lacks is then not asked.
func TestSummaryMatchRespectsRequiredTraits(t *testing.T) {
	t.Parallel()
	l, svc := newMatchLinkFixture(t, true)
	d := svc.opts.Decider.(*federatetest.Decider)
	inner := d.Fn
	var kinds [][]string
	d.Fn = func(in authz.Input) (authz.Decision, error) {
		dec, err := inner(in)
		if in.Action.Operation == "match" && in.Phase == authz.PhaseQuery && dec.Allow {
			kinds = append(kinds, in.Match.Traits)
			dec.Obligations[0].Required = []string{"birthDate", "citizenship"}
		}
		return dec, err
	}
	anchor, _ := svc.opts.IDs.Encode("a", "Patient", "a1")
	_, doc, err := l.Summary(context.Background(), deClinician, SummaryRequest{Patient: PatientQuery{ID: anchor}, BaseURL: "http://gw/fhir"})
	if err != nil {
		t.Fatal(err)
	}
	if got := takeApart(t, doc).sourcesOf("Patient"); len(got) != 1 {
		t.Errorf("a source requiring citizenship, which the record lacks, was linked: %v", got)
	}
	for _, k := range kinds {
		if strings.Join(k, ",") != strings.Join(match.Kinds, ",") {
			t.Errorf("the policy saw the record's kinds %v, not every kind", k)
		}
	}
	if len(kinds) == 0 {
		t.Error("no demographic linking was decided")
	}
}
