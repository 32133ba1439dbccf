package federate

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/migrant-health/mhg/conformance/examples/population"
	"github.com/migrant-health/mhg/conformance/measures"
	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/authz"
	"github.com/migrant-health/mhg/gateway/disclosure"
	"github.com/migrant-health/mhg/gateway/federate/federatetest"
	"github.com/migrant-health/mhg/gateway/source"
	"github.com/migrant-health/mhg/gateway/stats"
	"github.com/migrant-health/mhg/mappings"
)

// statisticsService federates real sources (generated populations in
// bundle sources), the real mapping engine and the built-in policies.
func statisticsService(t *testing.T, sources ...Source) *Service {
	t.Helper()
	eng, err := mappings.Load()
	if err != nil {
		t.Fatal(err)
	}
	cat, err := measures.Load()
	if err != nil {
		t.Fatal(err)
	}
	pol, err := authz.New(authz.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pol.Close)
	s, err := New(Options{Sources: sources, Mapper: eng, Decider: pol, IDs: testCodec(t), Measures: cat, StatisticsDeadline: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func statisticsRequest(country, role, purpose string) Request {
	return Request{Requester: auth.Requester{ClientID: "r", Org: "o", Country: country, Role: role, PurposeOfUse: purpose,
		Scopes: []string{"system/Measure.rs", "system/MeasureReport.rs"}},
		Interaction: "operation", ResourceType: "Measure", Operation: "evaluate-measure"}
}

func day(s string) time.Time {
	t, _ := time.Parse(time.DateOnly, s)
	return t
}

var (
	dePop = population.Options{Seed: 11, Patients: 600, Source: "de-pop", Country: "DE", Profile: "de-basis"}
	nlPop = population.Options{Seed: 12, Patients: 400, Source: "nl-pop", Country: "NL", Profile: "nl-core"}
	usPop = population.Options{Seed: 13, Patients: 100, Source: "us-pop", Country: "US", Profile: "us-core"}
)

// Across sources: each source is decided on its own, the strictest terms
// apply to the merged table, the period is widened to the coarsest grain,
// and a failed or refused source is named while the others count.
func TestEvaluateMeasureAcrossSources(t *testing.T) {
	t.Parallel()
	de, nl, us := federatetest.PopulationSource(t, dePop), federatetest.PopulationSource(t, nlPop), federatetest.PopulationSource(t, usPop)
	ua := &federatetest.Source{SourceID: "ua-down", SourceCountry: "UA", Fail: source.ErrUnavailable}
	s := statisticsService(t, de, nl, us, ua)
	req := statisticsRequest("DE", "researcher", "HRESCH")
	sr := StatisticsRequest{Measure: "mhp-diabetes-prevalence", Start: day("2025-02-10"), End: day("2025-05-03"), Strata: []string{"sex", "age-band-who"}}
	res, st, err := s.EvaluateMeasure(context.Background(), req, sr)
	if err != nil {
		t.Fatal(err)
	}
	rep := st.Report
	// DE's domestic terms: month, k 10, no rounding; the agreement with
	// NL: quarter, k 10, rounding 5. Four months become two quarters.
	if got := rep.Period; !got.Start.Equal(day("2025-01-01")) || !got.End.Equal(day("2025-06-30")) {
		t.Errorf("period %v..%v, want the first two quarters of 2025", got.Start, got.End)
	}
	if st.Rules.K != 10 || st.Rules.Rounding != 5 || st.Grain != "quarter" {
		t.Errorf("terms %+v grain %s, want k 10, rounding 5, quarter", st.Rules, st.Grain)
	}
	if !slices.Equal(rep.Failed, []string{"ua-down"}) || !slices.Equal(rep.Refused, []string{"us-pop"}) {
		t.Errorf("failed %v refused %v", rep.Failed, rep.Refused)
	}
	if !slices.Equal(res.Contacted, []string{"de-pop", "nl-pop", "ua-down"}) || us.Len() == 0 {
		t.Errorf("contacted %v", res.Contacted)
	}
	if err := disclosure.Check(rep.Release); err != nil {
		t.Fatal(err)
	}
	// The total is the two sources' counts, rounded to 5.
	m, _ := measures.Load()
	ms, _ := m.Measure(sr.Measure)
	ev := stats.New(m, mustMappings(t))
	want := 0
	for _, src := range []stats.Source{de, nl} {
		c, err := ev.EvaluateSource(context.Background(), src, stats.Request{Measure: ms, Period: rep.Period, Strata: sr.Strata})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range c {
			want += v[0]
		}
	}
	all := disclosure.Cell{Population: 0, Coord: []int{disclosure.All, disclosure.All}}
	if got := rep.Release.Lookup(all); got.Masked || got.Count != (want+2)/5*5 {
		t.Errorf("initial population total %+v, want %d rounded to 5", got, want)
	}
	for _, v := range rep.Release.Values {
		if !v.Masked && v.Count%5 != 0 {
			t.Errorf("cell %v published as %d, not a multiple of 5", v.Cell, v.Count)
		}
	}
	b, err := rep.MeasureReport("r", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r4.Parse(b); err != nil {
		t.Fatalf("not valid R4: %v", err)
	}
	// Both query decisions and the release of the report are recorded.
	phases := map[string]int{}
	for _, d := range res.Decisions {
		phases[d.Phase]++
	}
	if phases[authz.PhaseQuery] != 4 || phases[authz.PhaseRelease] != 1 {
		t.Errorf("decisions by phase %v", phases)
	}
}

func mustMappings(t *testing.T) *mappings.Engine {
	t.Helper()
	eng, err := mappings.Load()
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

func TestEvaluateMeasureRefusals(t *testing.T) {
	t.Parallel()
	de, nl := federatetest.PopulationSource(t, dePop), federatetest.PopulationSource(t, nlPop)
	both := statisticsService(t, de, nl)
	abroad := statisticsService(t, nl)
	year := StatisticsRequest{Measure: "mhp-tb-active", Start: day("2025-01-01"), End: day("2025-12-31"), Strata: []string{"sex"}}
	byStatus := year
	byStatus.Strata = []string{"migration-status"}
	oneMonth := year
	oneMonth.End = day("2025-01-31")
	tests := []struct {
		name   string
		s      *Service
		req    Request
		sr     StatisticsRequest
		reason string
	}{
		{"clinician", both, statisticsRequest("DE", "clinician", "PUBHLTH"), year, "role.not-allowed-for-class"},
		{"GOV", both, statisticsRequest("DE", "researcher", "GOV"), year, "firewall.query.purpose-forbidden"},
		{"HLEGAL", both, statisticsRequest("DE", "researcher", "HLEGAL"), year, "firewall.query.purpose-forbidden"},
		{"no purpose", both, statisticsRequest("DE", "researcher", ""), year, "purpose.missing"},
		{"migration status abroad", abroad, statisticsRequest("DE", "researcher", "HRESCH"), byStatus, "statistics.migration-status-stratum-not-allowed"},
		{"period shorter than the grain", abroad, statisticsRequest("DE", "researcher", "HRESCH"), oneMonth, "statistics.period-shorter-than-grain"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := tc.s.EvaluateMeasure(context.Background(), tc.req, tc.sr)
			var denied *DeniedError
			if !errors.As(err, &denied) || !slices.Contains(denied.Reasons, tc.reason) {
				t.Fatalf("err = %v, want a refusal for %s", err, tc.reason)
			}
		})
	}
	// Migration status at home is allowed, and the NL source is left out
	// (and named).
	_, st, err := both.EvaluateMeasure(context.Background(), statisticsRequest("DE", "researcher", "HRESCH"), byStatus)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(st.Report.Refused, []string{"nl-pop"}) {
		t.Errorf("refused %v, want nl-pop", st.Report.Refused)
	}
	for _, bad := range []StatisticsRequest{
		{Measure: "no-such", Start: year.Start, End: year.End},
		{Measure: "mhp-tb-active", Start: year.End, End: year.Start},
		{Measure: "mhp-tb-active", Start: year.Start, End: year.End, Strata: []string{"religion"}},
	} {
		if _, _, err := both.EvaluateMeasure(context.Background(), statisticsRequest("DE", "researcher", "HRESCH"), bad); !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrNotFound) {
			t.Errorf("%+v: err = %v", bad, err)
		}
	}
}

func TestPeriodSnapping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		start, end     string
		months         int
		quarter, years [2]string
	}{
		{"2025-02-10", "2025-05-03", 4, [2]string{"2025-01-01", "2025-06-30"}, [2]string{"2025-01-01", "2025-12-31"}},
		{"2025-01-01", "2025-12-31", 12, [2]string{"2025-01-01", "2025-12-31"}, [2]string{"2025-01-01", "2025-12-31"}},
		{"2024-12-31", "2025-01-01", 2, [2]string{"2024-10-01", "2025-03-31"}, [2]string{"2024-01-01", "2025-12-31"}},
		{"2024-02-29", "2024-02-29", 1, [2]string{"2024-01-01", "2024-03-31"}, [2]string{"2024-01-01", "2024-12-31"}},
	}
	for _, tc := range tests {
		p, n := monthsOf(day(tc.start), day(tc.end))
		if n != tc.months {
			t.Errorf("%s..%s: %d months, want %d", tc.start, tc.end, n, tc.months)
		}
		for g, want := range map[int][2]string{3: tc.quarter, 12: tc.years} {
			w := widen(p, g)
			if got := [2]string{w.Start.Format(time.DateOnly), w.End.Format(time.DateOnly)}; got != want {
				t.Errorf("%s..%s widened to %d months: %v, want %v", tc.start, tc.end, g, got, want)
			}
		}
	}
}
