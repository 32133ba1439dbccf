package federate

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/migrant-health/mhg/gateway/authz"
	"github.com/migrant-health/mhg/gateway/federate/federatetest"
	"github.com/migrant-health/mhg/gateway/match"
	"github.com/migrant-health/mhg/gateway/source"
	"github.com/migrant-health/mhg/mappings"
)

// matchService is a Service over the sources of matchLinkSources whose
// policy allows demographic search with the lowest grade of each source
// given, and refuses the sources named in short for want of traits.
func matchService(t *testing.T, grades map[string]string, short ...string) *Service {
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
		if in.Phase != authz.PhaseQuery {
			return authz.Decision{Allow: true, Reasons: []string{"test.allow"}}, nil
		}
		if slices.Contains(short, in.Source.ID) {
			return authz.Decision{Reasons: []string{reasonTraits}}, nil
		}
		g, ok := grades[in.Source.ID]
		if !ok {
			return authz.Decision{Reasons: []string{"test.no-agreement"}}, nil
		}
		return authz.Decision{Allow: true, Reasons: []string{"test.allow"}, Obligations: []authz.Obligation{{
			Kind: authz.ObligationMatch, Traits: in.Match.Traits, Grade: g, Rule: "test.match"}}}, nil
	}}
	svc, err := New(Options{Sources: srcs, Mapper: eng, Decider: d, IDs: testCodec(t), Deadline: 5 * time.Second, SourceTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

var oleksandr = match.Traits{Names: []match.Name{{Family: "Shevchenko", Given: []string{"Oleksandr"}}},
	BirthDate: match.Date{Year: 1980, Month: 5, Day: 3}, Sex: "male", Country: "DE"}

func sourcesOf(res *Result) []string {
	var out []string
	for _, e := range res.Entries {
		out = append(out, e.Source+":"+string(e.Match.Grade))
	}
	slices.Sort(out)
	return out
}

func TestMatchGradesBoundedPerSource(t *testing.T) {
	t.Parallel()
	// n holds Oleksandr with a birth year only: probable. Where its rules
	// release certain matches only, he is not shown.
	svc := matchService(t, map[string]string{"a": "possible", "u": "probable", "n": "certain", "p": "probable"})
	res, err := svc.Match(context.Background(), deClinician, MatchRequest{Traits: oleksandr})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a:certain", "p:certain", "p:certain", "u:certain"}
	if got := sourcesOf(res); !slices.Equal(got, want) {
		t.Errorf("candidates %v, want %v", got, want)
	}
	svc = matchService(t, map[string]string{"a": "possible", "u": "probable", "n": "probable", "p": "probable"})
	res, _ = svc.Match(context.Background(), deClinician, MatchRequest{Traits: oleksandr, Count: 2})
	if len(res.Entries) != 2 || res.Entries[0].Match.Score < res.Entries[1].Match.Score {
		t.Errorf("count 2: %v", sourcesOf(res))
	}
}

func TestMatchOnlyCertain(t *testing.T) {
	t.Parallel()
	svc := matchService(t, map[string]string{"a": "possible", "u": "probable"})
	res, err := svc.Match(context.Background(), deClinician, MatchRequest{Traits: oleksandr, OnlyCertain: true})
	if err != nil {
		t.Fatal(err)
	}
	// Two certain matches (a and u): not one, so none, with the same
	// warning as when nobody matches.
	if len(res.Entries) != 0 || !slices.ContainsFunc(res.Warnings, func(w Warning) bool { return w.Code == WarnConfidence && w.Source == "" }) {
		t.Errorf("entries %v warnings %v", sourcesOf(res), res.Warnings)
	}
	nobody := oleksandr
	nobody.Names = []match.Name{{Family: "Nowak", Given: []string{"Zofia"}}}
	res2, err := svc.Match(context.Background(), deClinician, MatchRequest{Traits: nobody, OnlyCertain: true})
	if err != nil || len(res2.Entries) != 0 || !slices.Equal(res.Warnings, res2.Warnings) {
		t.Errorf("nobody: %v %v, warnings %v vs %v", sourcesOf(res2), err, res2.Warnings, res.Warnings)
	}
	svc = matchService(t, map[string]string{"u": "probable"})
	res, _ = svc.Match(context.Background(), deClinician, MatchRequest{Traits: oleksandr, OnlyCertain: true})
	if got := sourcesOf(res); !slices.Equal(got, []string{"u:certain"}) {
		t.Errorf("one certain match: %v", got)
	}
}

func TestMatchTraitRefusals(t *testing.T) {
	t.Parallel()
	// Every source that could be asked needs more traits: ErrTraits.
	svc := matchService(t, map[string]string{}, "a", "u")
	_, err := svc.Match(context.Background(), deClinician, MatchRequest{Traits: oleksandr})
	var te *TraitsError
	if !errors.Is(err, ErrTraits) || !errors.As(err, &te) || !slices.Equal(te.Sources, []string{"a", "u"}) {
		t.Errorf("err %v", err)
	}
	// Some answer: the others are named in a warning.
	svc = matchService(t, map[string]string{"a": "possible"}, "u")
	res, err := svc.Match(context.Background(), deClinician, MatchRequest{Traits: oleksandr})
	if err != nil || !slices.Contains(res.Warnings, Warning{Source: "u", Code: WarnTraits}) {
		t.Errorf("err %v warnings %v", err, res.Warnings)
	}
	// Policy refusals for other reasons are a 403 and leave no warning.
	svc = matchService(t, map[string]string{})
	if _, err := svc.Match(context.Background(), deClinician, MatchRequest{Traits: oleksandr}); !errors.Is(err, ErrDenied) {
		t.Errorf("no source allowed: %v", err)
	}
	// No name: invalid, before any decision.
	if _, err := svc.Match(context.Background(), deClinician, MatchRequest{Traits: match.Traits{BirthDate: oleksandr.BirthDate}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("no name: %v", err)
	}
}

func TestNarrowingSearches(t *testing.T) {
	t.Parallel()
	got := narrowingSearches(match.Traits{Names: []match.Name{{Family: "Al-Khatib", Given: []string{"Мохаммед"}}}, BirthDate: match.Date{Year: 1990},
		Identifiers: []match.Identifier{{System: "s", Value: "v,1"}}}, false)
	var enc []string
	for _, v := range got {
		enc = append(enc, v.Encode())
	}
	want := []string{
		"family=Al-Khatib%2CKhatib&given=%D0%9C%D0%BE%D1%85%D0%B0%D0%BC%D0%BC%D0%B5%D0%B4%2Cmokhammed",
		"birthdate=ge1989-01-01&birthdate=le1991-12-31&family=Al-Khatib%2CKhatib",
		"birthdate=ge1989-01-01&birthdate=le1991-12-31&given=%D0%9C%D0%BE%D1%85%D0%B0%D0%BC%D0%BC%D0%B5%D0%B4%2Cmokhammed",
		"identifier=s%7Cv%5C%2C1",
	}
	if !slices.Equal(enc, want) {
		t.Errorf("searches\n%v\nwant\n%v", enc, want)
	}
}
