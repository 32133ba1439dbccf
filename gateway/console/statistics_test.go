package console

import (
	"encoding/csv"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/migrant-health/mhg/gateway/audit"
	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/federate"
)

var (
	statsRow   = regexp.MustCompile(`(?s)<tr[^>]*>(.*?)</tr>`)
	statsCell  = regexp.MustCompile(`<t([hd])( [^>]*)?>([^<]*)</t[hd]>`)
	statsTbody = regexp.MustCompile(`(?s)<table id="statistics">.*?<tbody>(.*?)</tbody>`)
)

// tableRows reads the released table off the page as the CSV has it: per
// row the strata's categories ("all" for a margin), then per population
// its count and a flag ("masked", the count then empty).
func tableRows(t *testing.T, page string) ([][]string, []int) {
	t.Helper()
	m := statsTbody.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no table on the page:\n%s", page)
	}
	var rows [][]string
	var counts []int
	for _, tr := range statsRow.FindAllStringSubmatch(m[1], -1) {
		var row []string
		for _, c := range statsCell.FindAllStringSubmatch(tr[1], -1) {
			text := html.UnescapeString(c[3])
			switch {
			case c[1] == "h" && text == "All":
				row = append(row, "all")
			case c[1] == "h":
				row = append(row, text)
			case strings.Contains(c[2], "masked"):
				if text != "masked" {
					t.Errorf("a masked cell says %q, not masked", text)
				}
				row = append(row, "", "masked")
			default:
				n, err := strconv.Atoi(text)
				if err != nil {
					t.Fatalf("cell %q is not a count", text)
				}
				counts = append(counts, n)
				row = append(row, text, "")
			}
		}
		rows = append(rows, row)
	}
	return rows, counts
}

func statisticsAudits(t *testing.T, h *harness) []string {
	raws, _, err := h.audit.Search(t.Context(), audit.Query{Operation: "evaluate-measure"})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range raws {
		out = append(out, string(r))
	}
	return out
}

// A researcher picks a measure, period and strata: the page shows the
// table $evaluate-measure releases for the same request, no count under
// k, masked cells labelled in text, the terms and the sources left out,
// and a CSV equal to the operation's; each evaluation is one AuditEvent.
func TestStatisticsPage(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{statistics: true})
	b := h.browser()
	b.signInAs("researcher")
	resp, body := b.get("/console/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `<a href="/console/statistics">Statistics</a>`) {
		t.Fatalf("a researcher's home: %s, statistics link: %v", resp.Status, strings.Contains(body, "/console/statistics"))
	}
	if resp, body := b.get("/console/statistics"); resp.StatusCode != http.StatusOK || !strings.Contains(body, `<select id="s-measure" name="measure"`) ||
		strings.Contains(body, `id="statistics"`) {
		t.Fatalf("the form: %s", resp.Status)
	}
	if n := len(statisticsAudits(t, h)); n != 0 {
		t.Errorf("the empty form recorded %d evaluations", n)
	}

	form := url.Values{"measure": {"mhp-diabetes-prevalence"}, "start": {"2025-02-10"}, "end": {"2025-05-03"},
		"stratum1": {"sex"}, "stratum2": {"age-band-who"}}
	resp, body = b.get("/console/statistics?" + form.Encode())
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("evaluate: %s\n%s", resp.Status, body)
	}

	// The same request through the operation's evaluation.
	req := auth.Requester{ClientID: "user-researcher", Org: "ministry-of-health", Country: "DE", Role: "researcher",
		PurposeOfUse: "PUBHLTH", Scopes: []string{"system/*.rs"}}
	day := func(s string) time.Time { d, _ := time.Parse(time.DateOnly, s); return d }
	_, st, err := h.fed.EvaluateMeasure(t.Context(), evaluateRequest(req), federate.StatisticsRequest{Measure: "mhp-diabetes-prevalence",
		Start: day("2025-02-10"), End: day("2025-05-03"), Strata: []string{"sex", "age-band-who"}})
	if err != nil {
		t.Fatal(err)
	}
	want, err := csv.NewReader(strings.NewReader(string(st.Report.CSV()))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	got, counts := tableRows(t, body)
	if !slices.EqualFunc(got, want[1:], slices.Equal[[]string]) {
		t.Errorf("the page's table differs from the report:\npage   %q\nreport %q", got, want[1:])
	}
	k := st.Rules.K
	if k < 2 {
		t.Fatalf("k %d", k)
	}
	for _, n := range counts {
		if n > 0 && n < k {
			t.Errorf("count %d (under k %d) is on the page", n, k)
		}
	}
	if !strings.Contains(body, `<td class="masked">masked</td>`) {
		t.Error("no masked cell on the page; the test asks for a table that has some")
	}
	for _, s := range []string{
		`<caption>`, `<th scope="col">Sex (administrative gender)</th>`, `<th scope="row">`,
		"counts below " + strconv.Itoa(k) + " are masked",
		"asked for 2025-02-10 to 2025-05-03", // the period widened to whole months
		"The report is incomplete.", "Not permitted by the policy: us-pop.", "Failed to answer: de-down.",
		`<svg role="img" aria-labelledby="chart-title"`,
	} {
		if !strings.Contains(body, s) {
			t.Errorf("the page lacks %q", s)
		}
	}
	audits := statisticsAudits(t, h)
	if len(audits) != 1 || !strings.Contains(audits[0], "mhp-diabetes-prevalence") || !strings.Contains(audits[0], "user-researcher") {
		t.Fatalf("%d AuditEvents for one evaluation: %v", len(audits), audits)
	}

	// The CSV link gives the operation's CSV.
	link := regexp.MustCompile(`href="(/console/statistics\?[^"]*format=csv)"`).FindStringSubmatch(body)
	if link == nil {
		t.Fatal("no CSV link")
	}
	resp, csvBody := b.get(html.UnescapeString(link[1]))
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") || csvBody != string(st.Report.CSV()) {
		t.Errorf("CSV: %s %s\n%s", resp.Status, resp.Header.Get("Content-Type"), csvBody)
	}
	if n := len(statisticsAudits(t, h)); n != 2 {
		t.Errorf("%d AuditEvents after two evaluations", n)
	}

	// Bad input is said on the page, and nothing is evaluated.
	bad := url.Values{"measure": {"mhp-diabetes-prevalence"}, "start": {"2025-05-01"}, "end": {"2025-01-01"}}
	if resp, body := b.get("/console/statistics?" + bad.Encode()); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "The period ends before it starts.") {
		t.Errorf("a period backwards: %s", resp.Status)
	}
	same := url.Values{"measure": {"mhp-diabetes-prevalence"}, "start": {"2025-01-01"}, "end": {"2025-12-31"}, "stratum1": {"sex"}, "stratum2": {"sex"}}
	if resp, _ := b.get("/console/statistics?" + same.Encode()); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("the same stratum twice: %s", resp.Status)
	}
	// A stratum not in the catalogue is refused before any evaluation.
	short := url.Values{"measure": {"mhp-diabetes-prevalence"}, "start": {"2025-01-01"}, "end": {"2025-12-31"}, "stratum1": {"no-such"}}
	if resp, _ := b.get("/console/statistics?" + short.Encode()); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a stratum not in the catalogue: %s", resp.Status)
	}
	if n := len(statisticsAudits(t, h)); n != 2 {
		t.Errorf("%d AuditEvents after bad input", n)
	}
}

// Clinicians and the legal team get no statistics page: no link, a 403.
func TestStatisticsPageRoles(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{statistics: true})
	for _, role := range []string{"clinician", "legal", "auditor"} {
		b := h.browser()
		b.signInAs(role)
		resp, body := b.get("/console/statistics?measure=mhp-diabetes-prevalence&start=2025-01-01&end=2025-12-31")
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "<h1>Forbidden</h1>") {
			t.Errorf("%s: GET /console/statistics = %s, want 403", role, resp.Status)
		}
		if strings.Contains(body, `href="/console/statistics"`) {
			t.Errorf("%s: the navigation links the statistics page", role)
		}
	}
	if n := len(statisticsAudits(t, h)); n != 0 {
		t.Errorf("%d evaluations for sessions that may not have any", n)
	}
	// Without measures there is no page, for anyone.
	b := newHarness(t, harnessOptions{}).browser()
	b.signInAs("researcher")
	if resp, _ := b.get("/console/statistics"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("a researcher on a console without statistics: %s, want 404", resp.Status)
	}
}
