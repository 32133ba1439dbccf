package fhirapi

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/migrant-health/mhg/conformance"
	"github.com/migrant-health/mhg/gateway/audit"
	"github.com/migrant-health/mhg/gateway/federate"
)

// opEvaluateMeasure is FHIR R4's Measure/$evaluate-measure.
const opEvaluateMeasure = "evaluate-measure"

// evaluateInputs are the parameters $evaluate-measure understands: R4's
// periodStart, periodEnd and reportType, and the gateway's stratifier (the
// strata catalogue codes to break the table down by, comma-separated or
// repeated, at most two). subject is named so that it can be refused:
// person-level reports never leave.
var evaluateInputs = map[string]bool{"periodStart": true, "periodEnd": true, "reportType": true, "stratifier": true, "subject": true, "measure": true}

// EvaluateMeasureOperation serves GET|POST Measure/{id}/$evaluate-measure
// (OperationDefinition mhp-evaluate-measure): a MeasureReport of type
// summary, or its table as CSV with _format=text/csv.
func EvaluateMeasureOperation() Operation {
	return Operation{Name: opEvaluateMeasure, Level: "instance", ResourceType: "Measure", Definition: conformance.OpEvaluateMeasure,
		Methods: []string{http.MethodGet, http.MethodPost},
		Handle:  func(h *Handler, c *gin.Context, _, id string) { h.evaluateMeasure(c, id) }}
}

// wantsCSV says whether the client asked for the CSV table.
func wantsCSV(r *http.Request) bool {
	if f := r.URL.Query().Get("_format"); f != "" {
		return f == "csv" || strings.HasPrefix(f, "text/csv")
	}
	for _, h := range r.Header.Values("Accept") {
		if strings.HasPrefix(strings.TrimSpace(h), "text/csv") {
			return true
		}
	}
	return false
}

// csvAllowed: only the statistics table comes as CSV.
func csvAllowed(r *http.Request) bool {
	return strings.HasSuffix(r.URL.Path, "/$"+opEvaluateMeasure) && wantsCSV(r)
}

// parsePeriodBound reads a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD) as the
// first (start) or last (end) day it covers.
func parsePeriodBound(v string, end bool) (time.Time, bool) {
	if i := strings.IndexByte(v, 'T'); i > 0 {
		v = v[:i]
	}
	for _, layout := range []struct {
		l    string
		span func(time.Time) time.Time
	}{
		{"2006", func(t time.Time) time.Time { return t.AddDate(1, 0, -1) }},
		{"2006-01", func(t time.Time) time.Time { return t.AddDate(0, 1, -1) }},
		{time.DateOnly, func(t time.Time) time.Time { return t }},
	} {
		if len(v) != len(layout.l) {
			continue
		}
		t, err := time.Parse(layout.l, v)
		if err != nil || t.Year() < 1900 || t.Year() > 2200 {
			return time.Time{}, false
		}
		if end {
			t = layout.span(t)
		}
		return t, true
	}
	return time.Time{}, false
}

func (h *Handler) evaluateMeasure(c *gin.Context, id string) {
	// An evaluation may run for the statistics deadline, longer than the
	// server's write timeout: its answer (the report, or the
	// OperationOutcome of a deadline) gets that long plus a minute to be
	// sent, not a dropped connection.
	_ = http.NewResponseController(c.Writer).SetWriteDeadline(time.Now().Add(h.opts.Federation.StatisticsDeadline() + time.Minute))
	p, ignored, e := h.readParams(c, evaluateInputs)
	if e != nil {
		h.fail(c, e)
		return
	}
	_ = ignored
	req := h.request(c, interactionOp, "Measure", opEvaluateMeasure)
	sr, e := evaluateRequest(p, id)
	if e != nil {
		h.finish(c, req, nil, e, 0, nil)
		return
	}
	res, st, err := h.opts.Federation.EvaluateMeasure(c.Request.Context(), req, sr)
	amend := func(entry *audit.Entry) {
		s := &audit.Statistics{Measure: sr.Measure, PeriodStart: sr.Start.Format(time.DateOnly), PeriodEnd: sr.End.Format(time.DateOnly), Strata: sr.Strata}
		if st != nil {
			s.PeriodStart, s.PeriodEnd = st.Report.Period.Start.Format(time.DateOnly), st.Report.Period.End.Format(time.DateOnly)
			s.Incomplete = len(st.Report.Failed)+len(st.Report.Refused) > 0
			entry.Released = map[string]int{"MeasureReport": 1}
		}
		entry.Statistics = s
	}
	if err != nil {
		h.finishWith(c, req, res, err, 0, amend, nil)
		return
	}
	if wantsCSV(c.Request) {
		body := st.Report.CSV()
		h.finishWith(c, req, res, nil, http.StatusOK, amend, func() {
			c.Header("Cache-Control", "no-store")
			c.Data(http.StatusOK, "text/csv; charset=utf-8", body)
		})
		return
	}
	body, err := st.Report.MeasureReport(reportID(sr, st), time.Now())
	if err != nil {
		h.finishWith(c, req, res, err, 0, amend, nil)
		return
	}
	h.finishWith(c, req, res, nil, http.StatusOK, amend, func() { h.write(c, http.StatusOK, body) })
}

// reportID names a report by what it counts, so the same request gives
// the same id as well as the same table.
func reportID(sr federate.StatisticsRequest, st *federate.Statistics) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{sr.Measure, st.Report.Period.Start.Format(time.DateOnly),
		st.Report.Period.End.Format(time.DateOnly), strings.Join(sr.Strata, ",")}, "|")))
	return "stats-" + hex.EncodeToString(sum[:8])
}

// evaluateRequest reads the parameters of $evaluate-measure.
func evaluateRequest(p opParams, id string) (federate.StatisticsRequest, *Error) {
	sr := federate.StatisticsRequest{Measure: id}
	if len(p["subject"]) > 0 {
		return sr, errorf(http.StatusBadRequest, "not-supported", "subject: the gateway releases population summaries only, never a report about one person")
	}
	if m, e := p.one("measure"); e != nil {
		return sr, e
	} else if m != "" && m != id && !strings.HasSuffix(m, "/Measure/"+id) {
		return sr, errorf(http.StatusBadRequest, "invalid", "measure names another Measure than the one in the URL")
	}
	rt, e := p.one("reportType")
	if e != nil {
		return sr, e
	}
	switch rt {
	case "", "population", "summary":
	default:
		return sr, errorf(http.StatusBadRequest, "not-supported", "reportType: only population (a summary MeasureReport) is served")
	}
	for _, b := range []struct {
		name string
		end  bool
		dst  *time.Time
	}{{"periodStart", false, &sr.Start}, {"periodEnd", true, &sr.End}} {
		v, e := p.one(b.name)
		if e != nil {
			return sr, e
		}
		if v == "" {
			return sr, errorf(http.StatusBadRequest, "required", "%s is required (a date: YYYY, YYYY-MM or YYYY-MM-DD)", b.name)
		}
		t, ok := parsePeriodBound(v, b.end)
		if !ok {
			return sr, errorf(http.StatusBadRequest, "invalid", "%s must be a date: YYYY, YYYY-MM or YYYY-MM-DD", b.name)
		}
		*b.dst = t
	}
	if sr.End.Before(sr.Start) {
		return sr, errorf(http.StatusBadRequest, "invalid", "periodEnd is before periodStart")
	}
	if sr.End.Sub(sr.Start) > 20*366*24*time.Hour {
		return sr, errorf(http.StatusBadRequest, "invalid", "the period may cover twenty years at most")
	}
	for _, v := range p["stratifier"] {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				sr.Strata = append(sr.Strata, s)
			}
		}
	}
	if len(sr.Strata) > 2 {
		return sr, errorf(http.StatusBadRequest, "invalid", "stratifier: at most two strata (one- and two-way tables)")
	}
	return sr, nil
}

// measures serves GET Measure (every shipped Measure, as a searchset) and
// GET Measure/{id}: the definitions, for those who may have statistics.
func (h *Handler) measures(c *gin.Context, id string) {
	interaction := interactionSearch
	if id != "" {
		interaction = interactionRead
	}
	req := h.request(c, interaction, "Measure", "")
	cat := h.opts.Federation.Measures()
	res, err := h.opts.Federation.Authorize(c.Request.Context(), req)
	if err != nil {
		h.finish(c, req, res, err, 0, nil)
		return
	}
	if id != "" {
		m, ok := cat.Measure(id)
		if !ok {
			h.finish(c, req, res, errorf(http.StatusNotFound, "not-found", "no Measure of that id"), 0, nil)
			return
		}
		h.finish(c, req, res, nil, http.StatusOK, m.JSON)
		return
	}
	ms := cat.Measures()
	total := len(ms)
	b := bundle{ResourceType: "Bundle", Type: "searchset", Timestamp: now(), Total: &total, Meta: &bundleMeta{LastUpdated: now()}}
	for _, m := range ms {
		b.Entry = append(b.Entry, bundleEntry{FullURL: h.opts.BaseURL + "/Measure/" + m.ID, Resource: m.JSON, Search: &entrySearch{Mode: "match"}})
	}
	h.finish(c, req, res, nil, http.StatusOK, mustJSON(b))
}
