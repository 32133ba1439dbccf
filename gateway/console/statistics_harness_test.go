package console

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/migrant-health/mhg/conformance/examples/population"
	"github.com/migrant-health/mhg/conformance/measures"
	"github.com/migrant-health/mhg/gateway/audit"
	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/authz"
	"github.com/migrant-health/mhg/gateway/federate"
	"github.com/migrant-health/mhg/gateway/federate/federatetest"
	"github.com/migrant-health/mhg/gateway/source"
	"github.com/migrant-health/mhg/mappings"
)

// statisticsFederation federates generated populations in bundle sources
// (a German one the domestic terms cover, a US one no agreement covers)
// and a second German source that is down, over the harness's policy engine.
func statisticsFederation(t testing.TB, engine *authz.Engine) *federate.Service {
	t.Helper()
	var srcs []federate.Source
	for _, o := range []population.Options{
		{Seed: 11, Patients: 600, Source: "de-pop", Country: "DE", Profile: "de-basis"},
		{Seed: 13, Patients: 100, Source: "us-pop", Country: "US", Profile: "us-core"},
	} {
		srcs = append(srcs, federatetest.PopulationSource(t, o))
	}
	srcs = append(srcs, &federatetest.Source{SourceID: "de-down", SourceCountry: "DE", Fail: source.ErrUnavailable})
	eng, err := mappings.Load()
	if err != nil {
		t.Fatal(err)
	}
	cat, err := measures.Load()
	if err != nil {
		t.Fatal(err)
	}
	ids, err := federate.NewIDCodec([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	fed, err := federate.New(federate.Options{Sources: srcs, Mapper: eng, Decider: engine, IDs: ids, Measures: cat, StatisticsDeadline: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return fed
}

// fedStatistics is the gateway's adapter (gateway/server) in small: the
// console's tests cannot import the server, which imports the console.
type fedStatistics struct{ fed *federate.Service }

func (s fedStatistics) Measures() []*measures.Measure { return s.fed.Measures().Measures() }

func (s fedStatistics) Evaluate(ctx context.Context, req auth.Requester, q StatisticsQuery) (*Evaluation, error) {
	res, st, err := s.fed.EvaluateMeasure(ctx, evaluateRequest(req), federate.StatisticsRequest{Measure: q.Measure, Start: q.Start, End: q.End, Strata: q.Strata})
	ev := &Evaluation{Sources: res.Contacted}
	for _, d := range res.Decisions {
		ev.Decisions = append(ev.Decisions, audit.Decision{ID: d.Decision.ID, Phase: d.Phase, Source: d.Source, Allow: d.Decision.Allow,
			Reasons: d.Decision.Reasons, Revision: d.Decision.Revision, Class: d.Class})
	}
	var denied *federate.DeniedError
	switch {
	case errors.As(err, &denied):
		return ev, &StatisticsError{Status: http.StatusForbidden, Message: "refused", Reasons: denied.Reasons}
	case err != nil:
		return ev, &StatisticsError{Status: http.StatusBadRequest, Message: "not evaluated"}
	}
	ev.Report = st.Report
	return ev, nil
}

func evaluateRequest(req auth.Requester) federate.Request {
	return federate.Request{Requester: req, Interaction: "operation", ResourceType: "Measure", Operation: "evaluate-measure"}
}
