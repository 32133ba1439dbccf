package server

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/authz"
	"github.com/migrant-health/mhg/gateway/console"
)

// The console's statistics page evaluates through the same federation as
// Measure/{id}/$evaluate-measure: for the same requester and request the
// adapter releases the CSV the operation sends, with every decision for
// the AuditEvent; a role the policy refuses gets a 403 with its rules.
func TestConsoleStatisticsAdapter(t *testing.T) {
	t.Parallel()
	g := startGateway(t, nil, Options{})
	if g.srv.statistics == nil {
		t.Fatal("the console has no statistics page although the gateway has measures")
	}
	tok := g.token(t, "DE", "researcher", "HRESCH", researcherScopes)
	q := url.Values{"periodStart": {"2025-01-01"}, "periodEnd": {"2025-12-31"}, "stratifier": {"sex,age-band-who"}, "_format": {"text/csv"}}
	creq, _ := http.NewRequest(http.MethodGet, g.base+evaluate("mhp-diabetes-prevalence", q), nil)
	creq.Header.Set("Authorization", "Bearer "+tok)
	cresp, err := http.DefaultClient.Do(creq)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(cresp.Body)
	cresp.Body.Close()
	if cresp.StatusCode != http.StatusOK || !strings.HasPrefix(cresp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("$evaluate-measure as CSV: %s %s", cresp.Status, body)
	}
	req := auth.Requester{ClientID: "console-user", Org: "org-de", Country: "DE", Role: "researcher", PurposeOfUse: "HRESCH",
		Scopes: []string{"system/*.rs"}}
	sq := console.StatisticsQuery{Measure: "mhp-diabetes-prevalence", Start: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		End: time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC), Strata: []string{"sex", "age-band-who"}}
	ev, err := g.srv.statistics.Evaluate(context.Background(), req, sq)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(ev.Report.CSV()); got != string(body) {
		t.Errorf("the console's table differs from the operation's:\nconsole %s\noperation %s", got, body)
	}
	phases := map[string]int{}
	for _, d := range ev.Decisions {
		phases[d.Phase]++
	}
	if phases[authz.PhaseRelease] != 1 || phases[authz.PhaseQuery] < 2 || len(ev.Sources) == 0 {
		t.Errorf("decisions by phase %v, sources %v", phases, ev.Sources)
	}
	if len(g.srv.statistics.Measures()) != 4 {
		t.Errorf("%d measures listed", len(g.srv.statistics.Measures()))
	}

	req.Role, req.PurposeOfUse = "clinician", "TREAT"
	ev, err = g.srv.statistics.Evaluate(context.Background(), req, sq)
	se, ok := err.(*console.StatisticsError)
	if !ok || se.Status != http.StatusForbidden || len(se.Reasons) == 0 || ev == nil || len(ev.Decisions) == 0 || ev.Report != nil {
		t.Errorf("a clinician's evaluation: %v (%T), evaluation %+v", err, err, ev)
	}
	sq.Strata = []string{"sex", "sex"}
	req.Role, req.PurposeOfUse = "researcher", "HRESCH"
	if _, err := g.srv.statistics.Evaluate(context.Background(), req, sq); err == nil || err.(*console.StatisticsError).Status != http.StatusBadRequest {
		t.Errorf("the same stratum twice: %v", err)
	}
	sq.Strata, sq.Measure = nil, "no-such-measure"
	if _, err := g.srv.statistics.Evaluate(context.Background(), req, sq); err == nil || err.(*console.StatisticsError).Status != http.StatusNotFound {
		t.Errorf("no such measure: %v", err)
	}
}
