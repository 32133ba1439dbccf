package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/migrant-health/mhg/conformance/measures"
	"github.com/migrant-health/mhg/gateway/audit"
	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/console"
	"github.com/migrant-health/mhg/gateway/federate"
)

// consoleStatistics serves the console's statistics page from the
// federation: the evaluation of Measure/{id}/$evaluate-measure, with its
// decisions per source, disclosure control and release decision. The
// console writes the one AuditEvent of each evaluation.
type consoleStatistics struct{ fed *federate.Service }

var _ console.Statistics = consoleStatistics{}

// Measures lists the shipped measures.
func (s consoleStatistics) Measures() []*measures.Measure {
	cat := s.fed.Measures()
	if cat == nil {
		return nil
	}
	return cat.Measures()
}

// Evaluate evaluates a measure as $evaluate-measure does, for req.
func (s consoleStatistics) Evaluate(ctx context.Context, req auth.Requester, q console.StatisticsQuery) (*console.Evaluation, error) {
	freq := federate.Request{Requester: req, Interaction: "operation", ResourceType: "Measure", Operation: "evaluate-measure"}
	res, st, err := s.fed.EvaluateMeasure(ctx, freq, federate.StatisticsRequest{Measure: q.Measure, Start: q.Start, End: q.End, Strata: q.Strata})
	ev := &console.Evaluation{}
	if res != nil {
		ev.Sources = res.Contacted
		for _, d := range res.Decisions {
			ev.Decisions = append(ev.Decisions, audit.Decision{
				ID: d.Decision.ID, Phase: d.Phase, Source: d.Source, Allow: d.Decision.Allow,
				Reasons: d.Decision.Reasons, Revision: d.Decision.Revision, Agreements: d.Decision.Agreements, Class: d.Class,
			})
		}
	}
	if err != nil {
		return ev, statisticsError(err)
	}
	ev.Report = st.Report
	return ev, nil
}

// statisticsError says what went wrong as the FHIR operation says it,
// with the status it answers with.
func statisticsError(err error) *console.StatisticsError {
	var denied *federate.DeniedError
	var failed *federate.SourcesFailedError
	switch {
	case errors.As(err, &denied):
		return &console.StatisticsError{Status: http.StatusForbidden, Message: "The policy permits no source for this request; the rules that refused it:", Reasons: denied.Reasons}
	case errors.Is(err, federate.ErrStatisticsOff):
		return &console.StatisticsError{Status: http.StatusNotFound, Message: "Statistics are not enabled on this gateway."}
	case errors.Is(err, federate.ErrNotFound):
		return &console.StatisticsError{Status: http.StatusNotFound, Message: "There is no measure of that id."}
	case errors.Is(err, federate.ErrInvalid):
		return &console.StatisticsError{Status: http.StatusBadRequest, Message: "The request is not valid: " + err.Error()}
	case errors.As(err, &failed):
		if failed.Timeout {
			return &console.StatisticsError{Status: http.StatusGatewayTimeout, Message: "No permitted source answered in time."}
		}
		return &console.StatisticsError{Status: http.StatusBadGateway, Message: "No permitted source could answer."}
	case errors.Is(err, federate.ErrDisclosive):
		return &console.StatisticsError{Status: http.StatusInternalServerError, Message: "The table could not be protected, so it is not released."}
	}
	return &console.StatisticsError{Status: http.StatusInternalServerError, Message: "The statistics could not be evaluated."}
}
