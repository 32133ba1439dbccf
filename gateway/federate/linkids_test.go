package federate

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/migrant-health/mhg/gateway/authz"
	"github.com/migrant-health/mhg/gateway/federate/federatetest"
	"github.com/migrant-health/mhg/gateway/source"
	"github.com/migrant-health/mhg/mappings"
)

// newRedactingLinker is the linker fixture's sources (a DE, b NL, c UA, d
// NL) under a policy that releases a Patient of another country than the
// requester's without any identifier, as the project's redaction policy
// does for a cross-border Patient.
func newRedactingLinker(t *testing.T) *linkerFixture {
	t.Helper()
	eng, err := mappings.Load()
	if err != nil {
		t.Fatal(err)
	}
	f := &linkerFixture{src: map[string]*countingSource{}}
	var srcs []Source
	for _, s := range []struct{ id, country string }{{"a", "DE"}, {"b", "NL"}, {"c", "UA"}, {"d", "NL"}} {
		b, err := source.OpenBundle(source.Options{ID: s.id, Country: s.country, Profile: "ips", Kind: source.KindBundle,
			Dir: filepath.Join("testdata", "linker", s.id), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		cs := &countingSource{Source: b}
		f.src[s.id] = cs
		srcs = append(srcs, cs)
	}
	d := &federatetest.Decider{Fn: func(in authz.Input) (authz.Decision, error) {
		if in.Resource != nil && in.Resource.Class == mappings.ClassSensitive {
			return authz.Decision{Reasons: []string{"test.class-s"}}, nil
		}
		dec := authz.Decision{Allow: true, Reasons: []string{"test.allow"}}
		if in.Phase == authz.PhaseRelease && in.Resource != nil && in.Resource.Type == "Patient" && in.Source.Country != in.Requester.Country {
			dec.Obligations = []authz.Obligation{{Kind: authz.ObligationRedact, Rule: "test.cross-border-identifiers", Paths: []string{"Patient.identifier"}}}
		}
		return dec, nil
	}}
	svc, err := New(Options{Sources: srcs, Mapper: eng, Decider: d, IDs: testCodec(t), Deadline: 5 * time.Second, SourceTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	if f.l, err = NewLinker(svc, LinkerOptions{Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }}); err != nil {
		t.Fatal(err)
	}
	return f
}

// $summary and $everything anchored on a record from another country
// link the person by the identifiers the source gave (passport, BSN),
// though release redaction removed them from the Patient the requester
// sees: the same people as anchored on the domestic record.
func TestLinkingUsesIdentifiersBeforeRedaction(t *testing.T) {
	t.Parallel()
	f := newRedactingLinker(t)
	ctx := context.Background()
	for _, anchor := range []struct{ src, upstream string }{{"a", "pa1"}, {"b", "pb1"}} {
		t.Run("anchored on "+anchor.src, func(t *testing.T) {
			id := f.id(t, anchor.src, "Patient", anchor.upstream)
			_, b, err := f.l.Summary(ctx, deClinician, SummaryRequest{Patient: PatientQuery{ID: id}, BaseURL: "https://gw.example/fhir"})
			if err != nil {
				t.Fatal(err)
			}
			d := takeApart(t, b)
			if got := d.sourcesOf("Patient"); got["a"] != 1 || got["b"] != 1 || got["d"] != 1 || len(got) != 3 {
				t.Fatalf("$summary linked %v, want a, b and d", got)
			}
			// What the requester sees of the Dutch record is still
			// redacted: its passport and BSN are nowhere in the document.
			if strings.Contains(string(b), "999991383") {
				t.Fatal("the document shows the redacted BSN")
			}

			ev, err := f.l.Everything(ctx, everythingRequest(), EverythingRequest{Patient: PatientQuery{ID: id}, Types: []string{"Patient"}})
			if err != nil {
				t.Fatal(err)
			}
			sources := map[string]int{}
			for _, e := range ev.Entries {
				if e.Type == "Patient" {
					sources[e.Source]++
					if e.Source == "b" && len(e.Resource.GetPatient().GetIdentifier()) != 0 {
						t.Fatal("$everything shows the cross-border Patient's identifiers")
					}
				}
			}
			if sources["a"] != 1 || sources["b"] != 1 || sources["d"] != 1 || len(sources) != 3 {
				t.Fatalf("$everything linked %v, want a, b and d", sources)
			}
		})
	}
}

func everythingRequest() Request {
	r := deClinician
	r.Operation = "everything"
	return r
}
