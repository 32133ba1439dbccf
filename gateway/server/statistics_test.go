package server

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/config"
	"github.com/migrant-health/mhg/gateway/disclosure"
	"github.com/migrant-health/mhg/gateway/stats"
)

// researcherScopes are what a statistics token needs: the Measures and
// their reports.
func researcherScopes(m *auth.MintOptions) {
	m.Scopes = []string{"system/Measure.rs", "system/MeasureReport.rs"}
}

// audited runs the auditor's check on a MeasureReport as it was sent: no
// count in 1..k-1, no masked cell derivable narrower than k.
func audited(t *testing.T, body []byte) *disclosure.Release {
	t.Helper()
	rel, err := stats.PublishedRelease(body)
	if err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	if err := disclosure.Check(rel); err != nil {
		t.Fatalf("released report fails the auditor's check: %v", err)
	}
	return rel
}

func evaluate(m string, q url.Values) string {
	return "/Measure/" + m + "/$evaluate-measure?" + q.Encode()
}

// The demo gateway evaluates the shipped measures over its sample sources
// (with their synthetic populations): the policy decides per source, the
// report is a valid R4 MeasureReport that passes the auditor's check,
// names the source no agreement covers, comes as CSV too, and leaves one
// AuditEvent without a patient in it.
func TestEvaluateMeasureHTTP(t *testing.T) {
	t.Parallel()
	g := startGateway(t, nil, Options{})
	tok := g.token(t, "DE", "researcher", "HRESCH", researcherScopes)

	list := g.get(t, "/Measure", tok)
	if list.status != http.StatusOK || len(list.entries("match")) != 4 {
		t.Fatalf("GET Measure: %d %s", list.status, list.body)
	}
	one := g.get(t, "/Measure/mhp-tb-active", tok)
	if one.status != http.StatusOK || one.json["resourceType"] != "Measure" || one.json["id"] != "mhp-tb-active" {
		t.Fatalf("GET Measure/mhp-tb-active: %d %s", one.status, one.body)
	}
	cs := g.get(t, "/metadata", "")
	if !bytes.Contains(cs.body, []byte(`"name":"evaluate-measure"`)) || !bytes.Contains(cs.body, []byte("OperationDefinition/mhp-evaluate-measure")) {
		t.Error("the CapabilityStatement does not list $evaluate-measure")
	}

	q := url.Values{"periodStart": {"2025"}, "periodEnd": {"2025"}, "stratifier": {"sex,age-band-who"}}
	r := g.get(t, evaluate("mhp-diabetes-prevalence", q), tok)
	if r.status != http.StatusOK || r.json["resourceType"] != "MeasureReport" || r.json["type"] != "summary" {
		t.Fatalf("$evaluate-measure: %d %s", r.status, r.body)
	}
	rel := audited(t, r.body)
	if rel.Rules.K != 10 || rel.Rules.Rounding != 5 || len(rel.Dims) != 2 {
		t.Errorf("terms %+v dims %v, want k 10, rounding 5 (the agreement with NL and UA), two strata", rel.Rules, rel.Dims)
	}
	masked := 0
	for _, v := range rel.Values {
		if v.Masked {
			masked++
		}
	}
	if masked == 0 || !bytes.Contains(r.body, []byte(`"valueCode":"masked"`)) {
		t.Error("no masked cell in a sex by age table of a few thousand people: the demo shows no suppression")
	}
	if !bytes.Contains(r.body, []byte("us-sample was not asked")) || !bytes.Contains(r.body, []byte("mhp-report-incomplete")) {
		t.Errorf("the US source (no agreement) is not named in the report:\n%s", r.body)
	}
	again := g.get(t, evaluate("mhp-diabetes-prevalence", q), tok)
	strip := func(b []byte) string {
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		delete(m, "date")
		out, _ := json.Marshal(m)
		return string(out)
	}
	if strip(again.body) != strip(r.body) {
		t.Error("the same request gave another table")
	}

	// POST with a Parameters resource.
	post := `{"resourceType":"Parameters","parameter":[{"name":"periodStart","valueDate":"2025-01-01"},` +
		`{"name":"periodEnd","valueDate":"2025-12-31"},{"name":"stratifier","valueCode":"sex"}]}`
	req, _ := http.NewRequest(http.MethodPost, g.base+"/Measure/mhp-hiv-diagnoses/$evaluate-measure", strings.NewReader(post))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/fhir+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST $evaluate-measure: %d %s", resp.StatusCode, buf.Bytes())
	}
	if hiv := audited(t, buf.Bytes()); hiv.Rules.K != 20 {
		t.Errorf("HIV released with k %d, want the agreement's protected_k 20", hiv.Rules.K)
	}

	// CSV of the same table.
	q.Set("_format", "text/csv")
	creq, _ := http.NewRequest(http.MethodGet, g.base+evaluate("mhp-diabetes-prevalence", q), nil)
	creq.Header.Set("Authorization", "Bearer "+tok)
	cresp, err := http.DefaultClient.Do(creq)
	if err != nil {
		t.Fatal(err)
	}
	var cbody bytes.Buffer
	_, _ = cbody.ReadFrom(cresp.Body)
	cresp.Body.Close()
	if cresp.StatusCode != http.StatusOK || !strings.HasPrefix(cresp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("CSV: %d %s %s", cresp.StatusCode, cresp.Header.Get("Content-Type"), cbody.Bytes())
	}
	rows, err := csv.NewReader(bytes.NewReader(cbody.Bytes())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"sex", "age-band-who", "initial-population", "initial-population-flag"}; !slices.Equal(rows[0][:4], want) {
		t.Errorf("CSV header %v", rows[0])
	}
	csvMasked := 0
	for _, row := range rows[1:] {
		for i := 3; i < len(row); i += 2 {
			if row[i] == "masked" {
				csvMasked++
				if row[i-1] != "" {
					t.Errorf("masked cell with a count: %v", row)
				}
			}
		}
	}
	if csvMasked != masked || len(rows)-1 != len(rel.Values)/len(rel.Populations) {
		t.Errorf("CSV has %d masked cells in %d rows, the report %d in %d cells", csvMasked, len(rows)-1, masked, len(rel.Values))
	}

	// One AuditEvent per evaluation, naming what was counted, no patient.
	f, err := os.Open(g.cfg.Audit.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	evaluations := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.Contains(line, []byte(`"evaluate-measure"`)) {
			continue
		}
		evaluations++
		for _, want := range []string{`"measure"`, `"period"`, `"strata"`, `"incomplete"`, "de-sample", "HRESCH", "researcher"} {
			if !bytes.Contains(line, []byte(want)) {
				t.Errorf("AuditEvent of an evaluation lacks %s", want)
			}
		}
		if bytes.Contains(line, []byte(`"Patient/`)) {
			t.Error("AuditEvent of an evaluation names a patient")
		}
	}
	if evaluations != 4 {
		t.Errorf("%d AuditEvents of evaluations, want 4", evaluations)
	}
}

func TestEvaluateMeasureRefusedAndBadInput(t *testing.T) {
	t.Parallel()
	g := startGateway(t, nil, Options{})
	tok := g.token(t, "DE", "researcher", "HRESCH", researcherScopes)
	year := url.Values{"periodStart": {"2025"}, "periodEnd": {"2025"}}
	tests := []struct {
		name   string
		token  string
		path   string
		status int
		want   string
	}{
		{"clinician", g.token(t, "DE", "clinician", "PUBHLTH"), evaluate("mhp-tb-active", year), 403, "role.not-allowed-for-class"},
		{"GOV", g.token(t, "DE", "researcher", "GOV", researcherScopes), evaluate("mhp-tb-active", year), 403, "firewall.query.purpose-forbidden"},
		{"HLEGAL", g.token(t, "DE", "researcher", "HLEGAL", researcherScopes), evaluate("mhp-tb-active", year), 403, "firewall.query.purpose-forbidden"},
		{"unknown measure", tok, evaluate("mhp-nothing", year), 404, ""},
		{"no period", tok, evaluate("mhp-tb-active", url.Values{}), 400, "periodStart is required"},
		{"bad date", tok, evaluate("mhp-tb-active", url.Values{"periodStart": {"2025-13"}, "periodEnd": {"2025"}}), 400, "periodStart must be a date"},
		{"person level", tok, evaluate("mhp-tb-active", url.Values{"periodStart": {"2025"}, "periodEnd": {"2025"}, "subject": {"Patient/x"}}), 400, "never a report about one person"},
		{"stratum outside the catalogue", tok, evaluate("mhp-tb-active", url.Values{"periodStart": {"2025"}, "periodEnd": {"2025"}, "stratifier": {"religion"}}), 400, "not in the strata catalogue"},
		{"three strata", tok, evaluate("mhp-tb-active", url.Values{"periodStart": {"2025"}, "periodEnd": {"2025"}, "stratifier": {"sex,citizenship,age-band-5"}}), 400, "at most two"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := g.get(t, tc.path, tc.token)
			if r.status != tc.status || !bytes.Contains(r.body, []byte(tc.want)) || r.json["resourceType"] != "OperationOutcome" {
				t.Fatalf("%d %s, want %d with %q", r.status, r.body, tc.status, tc.want)
			}
		})
	}
	// Migration status: counted at home, not asked of the other countries
	// (their agreement does not name it), and they are named.
	q := url.Values{"periodStart": {"2025"}, "periodEnd": {"2025"}, "stratifier": {"migration-status"}}
	r := g.get(t, evaluate("mhp-tb-active", q), tok)
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	audited(t, r.body)
	for _, src := range []string{"nl-sample", "ua-sample", "us-sample"} {
		if !bytes.Contains(r.body, []byte("source "+src+" was not asked")) {
			t.Errorf("%s not named as not asked", src)
		}
	}
}

// A third-party FHIR client (fhir-kit-client, pinned in
// conformance/clients) finds the operation in the CapabilityStatement,
// lists and reads the Measures and calls $evaluate-measure by GET and by
// POST; both reports pass the auditor's check and are the same table.
func TestFHIRKitEvaluateMeasure(t *testing.T) {
	t.Parallel()
	g := startGateway(t, nil, Options{})
	tok := g.token(t, "NL", "researcher", "HRESCH", researcherScopes)
	out := runClient(t, "fhirkit-measure.mjs", "MHG_BASE="+g.base, "MHG_TOKEN="+tok, "MHG_MEASURE=mhp-mcv-coverage",
		"MHG_PERIOD_START=2025-01", "MHG_PERIOD_END=2025-12", "MHG_STRATIFIER=reporting-country,sex")
	var got struct {
		Definition string
		Measures   []string
		Read       string
		Get, Post  json.RawMessage
		Subject    struct {
			Status       int
			ResourceType string
		}
		Error any
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("client output: %v\n%s", err, out)
	}
	if got.Error != nil {
		t.Fatalf("client error: %v", got.Error)
	}
	if !strings.HasSuffix(got.Definition, "/OperationDefinition/mhp-evaluate-measure") || len(got.Measures) != 4 || got.Read != "mhp-mcv-coverage" {
		t.Fatalf("definition %q, measures %v, read %q", got.Definition, got.Measures, got.Read)
	}
	get, post := audited(t, got.Get), audited(t, got.Post)
	if len(get.Dims) != 2 || len(get.Populations) != 3 {
		t.Errorf("GET report: dims %v populations %v", get.Dims, get.Populations)
	}
	if fmt.Sprint(get.Values) != fmt.Sprint(post.Values) {
		t.Error("GET and POST gave different tables")
	}
	if got.Subject.Status != http.StatusBadRequest || got.Subject.ResourceType != "OperationOutcome" {
		t.Errorf("person-level report: %+v", got.Subject)
	}
}

// TestEvaluateMeasureOutlastsWriteTimeout: an evaluation runs up to the
// statistics deadline, which may be longer than server.write_timeout; the
// report still reaches the client instead of a dropped connection. The
// write timeout here is shorter than any evaluation.
func TestEvaluateMeasureOutlastsWriteTimeout(t *testing.T) {
	g := startGateway(t, func(c *config.Config) { c.Server.WriteTimeout = 50 * time.Millisecond }, Options{})
	tok := g.token(t, "DE", "researcher", "HRESCH", researcherScopes)
	q := url.Values{"periodStart": {"2025-01-01"}, "periodEnd": {"2025-12-31"}, "stratifier": {"sex"}}
	r := g.get(t, evaluate("mhp-diabetes-prevalence", q), tok)
	if r.status != http.StatusOK {
		t.Fatalf("$evaluate-measure with a 50ms write timeout: %d %.300s", r.status, r.body)
	}
	if !strings.Contains(string(r.body), `"MeasureReport"`) {
		t.Fatalf("no MeasureReport: %.300s", r.body)
	}
}
