package server

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/migrant-health/mhg/gateway/config"
)

// A live session over three sources (two FHIR servers and a built-in one)
// leaves the source, cache, decision and audit series on /metrics, and a
// second request moves them: every instrument the gateway declares is
// recorded where its event happens.
func TestMetricsRecordTheSession(t *testing.T) {
	_, nl, _, edit := nationalSources(t)
	g := startGateway(t, func(c *config.Config) {
		edit(c)
		c.Sources = append(c.Sources, config.Source{ID: "ua-sample", Country: "UA", Profile: "ips", Kind: config.KindBundle, Dir: config.BuiltinPrefix + "ua-sample"})
		c.Cache.Disabled = false
	}, Options{})
	clin := g.token(t, "DE", "clinician", "TREAT")
	search := "/Patient?identifier=" + aminaPassport
	if r := g.get(t, search, clin); r.status != 200 || len(r.entries("match")) != 3 {
		t.Fatalf("search: %d %s", r.status, r.body)
	}
	first := g.scrape(t)

	series := []struct {
		name   string
		labels []string
	}{
		{"mhg_source_requests_total", []string{`mhg_source_id="de-kbv"`}},
		{"mhg_source_requests_total", []string{`mhg_source_id="ua-sample"`}},
		{"mhg_source_duration_seconds_count", []string{`mhg_source_id="nl-lsp"`}},
		{"mhg_cache_misses_total", []string{`mhg_source_id="de-kbv"`, `mhg_cache_kind=`}},
		{"mhg_authz_decisions_total", []string{`mhg_decision="allow"`, `mhg_phase="query"`}},
		{"mhg_authz_decisions_total", []string{`mhg_decision="allow"`, `mhg_phase="release"`}},
		{"mhg_authz_decision_reasons_total", []string{`mhg_rule_id=`}},
		{"mhg_audit_records_total", []string{`mhg_outcome="success"`}},
		{"mhg_audit_write_duration_seconds_count", nil},
	}
	for _, s := range series {
		if v, ok := sumSeries(first, s.name, s.labels...); !ok || v <= 0 {
			t.Errorf("after a search: %s%v = %v (present %v)", s.name, s.labels, v, ok)
		}
	}
	if v, ok := sumSeries(first, "mhg_source_breaker_state", `mhg_source_id="de-kbv"`); !ok || v != 0 {
		t.Errorf("breaker state of a healthy source: %v (present %v)", v, ok)
	}

	// The same search again: answered from the cache, decided and audited
	// again, no source asked.
	if r := g.get(t, search, clin); r.status != 200 {
		t.Fatalf("second search: %d", r.status)
	}
	second := g.scrape(t)
	for _, s := range []struct {
		name   string
		labels []string
	}{
		{"mhg_cache_hits_total", []string{`mhg_source_id="de-kbv"`}},
		{"mhg_authz_decisions_total", []string{`mhg_phase="query"`}},
		{"mhg_audit_records_total", []string{`mhg_outcome="success"`}},
	} {
		before, _ := sumSeries(first, s.name, s.labels...)
		after, _ := sumSeries(second, s.name, s.labels...)
		if after <= before {
			t.Errorf("%s%v did not move: %v then %v", s.name, s.labels, before, after)
		}
	}
	before, _ := sumSeries(first, "mhg_source_requests_total", `mhg_source_id="de-kbv"`)
	after, _ := sumSeries(second, "mhg_source_requests_total", `mhg_source_id="de-kbv"`)
	if after != before {
		t.Errorf("a cached search asked the source: %v then %v requests", before, after)
	}

	// A failing source is counted with the sentinel's name.
	nl.mode.Store("500")
	g.get(t, search, clin, "Cache-Control", "no-cache")
	nl.mode.Store("")
	if v, ok := sumSeries(g.scrape(t), "mhg_source_errors_total", `mhg_source_id="nl-lsp"`, `error_type="source.unavailable"`); !ok || v <= 0 {
		t.Errorf("a failing source left no error series: %v", v)
	}

	// A refused request is counted as a denial.
	g.get(t, search, g.token(t, "DE", "clinician", "HLEGAL"))
	if v, ok := sumSeries(g.scrape(t), "mhg_authz_decisions_total", `mhg_decision="deny"`); !ok || v <= 0 {
		t.Errorf("a refusal left no deny series: %v", v)
	}
}

// scrape reads /metrics.
func (g *gateway) scrape(t *testing.T) []byte {
	t.Helper()
	r := g.get(t, "http://"+g.cfg.Listen+"/metrics", "")
	if r.status != 200 {
		t.Fatalf("/metrics: %d", r.status)
	}
	return r.body
}

// sumSeries adds up the samples of one metric whose labels hold every
// given fragment, and says whether there was any.
func sumSeries(body []byte, name string, labels ...string) (float64, bool) {
	var sum float64
	found := false
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		metric, rest, ok := strings.Cut(line, " ")
		n, lbls, _ := strings.Cut(metric, "{")
		if !ok || n != name {
			continue
		}
		all := true
		for _, l := range labels {
			all = all && strings.Contains(lbls, l)
		}
		if !all {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
		if err != nil {
			continue
		}
		sum += v
		found = true
	}
	return sum, found
}
