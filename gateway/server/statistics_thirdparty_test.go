package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/migrant-health/mhg/conformance/examples/population"
	"github.com/migrant-health/mhg/gateway/config"
)

// populationFiles writes one generated population twice: as NDJSON in a
// directory (a bundle source) and as a collection Bundle (what the
// third-party server loads).
func populationFiles(t *testing.T, opts population.Options) (dir, bundle string) {
	t.Helper()
	nd, err := population.NDJSON(opts)
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "people.ndjson"), nd, 0o600); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.WriteString(`{"resourceType":"Bundle","type":"collection","entry":[`)
	for i, line := range bytes.Split(bytes.TrimSpace(nd), []byte("\n")) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"resource":`)
		b.Write(line)
		b.WriteByte('}')
	}
	b.WriteString("]}")
	bundle = filepath.Join(t.TempDir(), "population.json")
	if err := os.WriteFile(bundle, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, bundle
}

// reportTable is what a MeasureReport says, without what differs by
// run or source: each group's populations and strata, in order.
func reportTable(t *testing.T, body []byte) string {
	t.Helper()
	var r struct {
		Status string            `json:"status"`
		Group  []json.RawMessage `json:"group"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if len(r.Group) == 0 {
		t.Fatalf("a report without groups: %s", body)
	}
	out, _ := json.Marshal(r.Group)
	return r.Status + " " + string(out)
}

// Statistics over a national FHIR server this project did not write
// (Medplum's fhir-router, paging at 37): the Patients are scanned page by
// page, their records searched a batch of patients at a time, and the
// tables are those of the same population served as a bundle source,
// which the stats package's tests check against counts computed without
// the measure engine. Every report passes the auditor's check.
func TestStatisticsOverThirdPartyServer(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a node server")
	}
	opts := population.Options{Seed: 11, Patients: 600, Source: "de-mp", Country: "DE", Profile: "de-basis"}
	dir, bundle := populationFiles(t, opts)
	srv := startThirdParty(t, "37", "", bundle)

	overFHIR := startGateway(t, func(c *config.Config) {
		c.Sources = []config.Source{{ID: "de-mp", Country: "DE", Profile: "de-basis", Kind: config.KindFHIR,
			BaseURL: srv.base, Timeout: 30 * time.Second}}
		c.Cache.Disabled = true
		c.Federation.StatisticsDeadline = 2 * time.Minute
	}, Options{})
	overBundle := startGateway(t, func(c *config.Config) {
		c.Sources = []config.Source{{ID: "de-mp", Country: "DE", Profile: "de-basis", Kind: config.KindBundle, Dir: dir}}
	}, Options{})

	for _, tc := range []struct{ measure, strata string }{
		{"mhp-diabetes-prevalence", "sex,age-band-who"},
		{"mhp-mcv-coverage", "sex"},
		{"mhp-diabetes-prevalence", "country-of-birth"},
	} {
		t.Run(tc.measure+"/"+tc.strata, func(t *testing.T) {
			q := url.Values{"periodStart": {"2025"}, "periodEnd": {"2025"}, "stratifier": {tc.strata}}
			var tables []string
			for _, g := range []*gateway{overFHIR, overBundle} {
				tok := g.token(t, "DE", "researcher", "HRESCH", researcherScopes)
				r := g.get(t, evaluate(tc.measure, q), tok)
				if r.status != http.StatusOK {
					t.Fatalf("%s: %d %s", tc.measure, r.status, r.body)
				}
				if bytes.Contains(r.body, []byte("mhp-report-incomplete")) {
					t.Fatalf("%s: the report says it is incomplete:\n%s", tc.measure, r.body)
				}
				audited(t, r.body)
				tables = append(tables, reportTable(t, r.body))
			}
			if tables[0] != tables[1] {
				t.Errorf("%s over the FHIR server:\n%s\nover the same population as a bundle:\n%s", tc.measure, tables[0], tables[1])
			}
			if !strings.Contains(tables[0], `"count":`) {
				t.Errorf("%s: no count in the report: %s", tc.measure, tables[0])
			}
		})
	}
}
