package fhirapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/migrant-health/mhg/gateway/audit"
)

// AuditSearcher answers auditors' searches over the audit log.
type AuditSearcher interface {
	Search(ctx context.Context, q audit.Query) ([]json.RawMessage, int, error)
}

// auditParams are AuditEvent's search parameters.
var auditParams = []string{"patient", "agent", "purpose", "outcome"}

// searchAuditEvents serves GET /fhir/AuditEvent for auditors: the policy
// decides who may (auditors and administrators), and the search itself is
// audited.
func (h *Handler) searchAuditEvents(c *gin.Context) {
	if h.opts.AuditSearch == nil {
		h.fail(c, errorf(http.StatusNotFound, "not-supported", "audit search is not enabled"))
		return
	}
	q := c.Request.URL.Query()
	dates := q["date"]
	q.Del("date")
	sp, e := parseSearch("AuditEvent", q, handlingStrict(c.Request.Header), h.opts.DefaultCount, h.opts.MaxCount)
	if e != nil {
		h.fail(c, e)
		return
	}
	query := audit.Query{
		Patient: strings.TrimPrefix(sp.Values["patient"], "Patient/"), Agent: sp.Values["agent"],
		Purpose: sp.Values["purpose"], Outcome: sp.Values["outcome"], Count: sp.Count, Offset: sp.Offset,
	}
	if i := strings.LastIndexByte(query.Purpose, '|'); i >= 0 {
		query.Purpose = query.Purpose[i+1:]
	}
	for _, d := range dates {
		if e := dateBound(&query, d); e != nil {
			h.fail(c, e)
			return
		}
	}
	if sp.SummaryCount {
		query.Count = 0
	}
	req := h.request(c, interactionSearch, "AuditEvent", "")
	res, err := h.opts.Federation.Authorize(c.Request.Context(), req)
	if err != nil {
		h.finish(c, req, res, err, 0, nil)
		return
	}
	events, total, err := h.opts.AuditSearch.Search(c.Request.Context(), query)
	if err != nil {
		h.finish(c, req, res, err, 0, nil)
		return
	}
	b := bundle{ResourceType: "Bundle", Type: "searchset", Timestamp: now(), Total: &total, Meta: &bundleMeta{LastUpdated: now()}}
	count := sp.Count
	if sp.SummaryCount {
		count = 0
	}
	b.Link = pageLinks(h.opts.BaseURL, "AuditEvent", c.Request.URL.Query(), sp.Offset, count, total)
	if !sp.SummaryCount {
		for _, ev := range events {
			var id struct {
				ID string `json:"id"`
			}
			_ = json.Unmarshal(ev, &id)
			b.Entry = append(b.Entry, bundleEntry{FullURL: h.opts.BaseURL + "/AuditEvent/" + id.ID, Resource: ev, Search: &entrySearch{Mode: "match"}})
		}
	}
	if oo := h.searchOutcome(nil, sp.Ignored, nil); oo != nil {
		b.Entry = append(b.Entry, outcomeEntry(oo))
	}
	h.finish(c, req, res, nil, http.StatusOK, mustJSON(b))
}

// dateBound applies one date=[prefix]value parameter to the query. Values
// are FHIR dates or dateTimes; a date without time covers the whole day
// (UTC).
func dateBound(q *audit.Query, v string) *Error {
	prefix := "eq"
	if len(v) > 2 && strings.Contains("eq ne gt lt ge le sa eb ap", v[:2]) && v[0] >= 'a' && v[0] <= 'z' {
		prefix, v = v[:2], v[2:]
	}
	from, to, ok := dateRange(v)
	if !ok {
		return errorf(http.StatusBadRequest, "value", "date must be a FHIR date or dateTime with an optional prefix (ge, le, gt, lt, eq)")
	}
	later := func(t time.Time) {
		if q.DateFrom.IsZero() || t.After(q.DateFrom) {
			q.DateFrom = t
		}
	}
	earlier := func(t time.Time) {
		if q.DateTo.IsZero() || t.Before(q.DateTo) {
			q.DateTo = t
		}
	}
	switch prefix {
	case "eq":
		later(from)
		earlier(to)
	case "ge", "sa":
		later(from)
		if prefix == "sa" {
			later(to)
		}
	case "gt":
		later(to)
	case "lt", "eb":
		earlier(from)
	case "le":
		earlier(to)
	default:
		return errorf(http.StatusBadRequest, "not-supported", "date prefix %s is not supported", prefix)
	}
	return nil
}

// dateRange returns the half-open interval a FHIR date or dateTime covers.
func dateRange(v string) (from, to time.Time, ok bool) {
	for _, f := range []struct {
		layout string
		next   func(time.Time) time.Time
	}{
		{"2006", func(t time.Time) time.Time { return t.AddDate(1, 0, 0) }},
		{"2006-01", func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }},
		{"2006-01-02", func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }},
		{time.RFC3339Nano, func(t time.Time) time.Time { return t.Add(time.Microsecond) }},
	} {
		if t, err := time.Parse(f.layout, v); err == nil {
			return t.UTC(), f.next(t).UTC(), true
		}
	}
	return time.Time{}, time.Time{}, false
}
