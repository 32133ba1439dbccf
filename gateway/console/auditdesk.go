package console

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/gateway/audit"
	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/authz"
)

// PageSize is how many AuditEvents a timeline page shows.
const PageSize = 50

// eventRow is one AuditEvent as the pages show it.
type eventRow struct {
	audit.Event
	TraceURL string
}

func (c *Console) rows(events []audit.Event) []eventRow {
	out := make([]eventRow, len(events))
	for i, e := range events {
		out[i] = eventRow{Event: e}
		if c.opts.TraceURL != "" && e.TraceID != "" {
			out[i].TraceURL = strings.ReplaceAll(c.opts.TraceURL, "{trace_id}", url.PathEscape(e.TraceID))
		}
	}
	return out
}

// filter is the timeline's filter form.
type filter struct {
	From, To, Org, Country, Purpose, Outcome, Patient string
	BreakGlass                                        bool
	Offset                                            int
}

func (f filter) query() (audit.Query, string) {
	q := audit.Query{Agent: f.Org, Country: strings.ToUpper(f.Country), Purpose: f.Purpose, Outcome: f.Outcome,
		BreakGlass: f.BreakGlass, Count: PageSize, Offset: f.Offset}
	if f.From != "" {
		t, err := time.Parse(time.DateOnly, f.From)
		if err != nil {
			return q, "The period must be given as dates (YYYY-MM-DD)."
		}
		q.DateFrom = t
	}
	if f.To != "" {
		t, err := time.Parse(time.DateOnly, f.To)
		if err != nil {
			return q, "The period must be given as dates (YYYY-MM-DD)."
		}
		q.DateTo = t.AddDate(0, 0, 1)
	}
	if p := strings.TrimPrefix(strings.TrimSpace(f.Patient), "Patient/"); p != "" {
		if !r4.IsID(p) {
			return q, "Name the patient by the gateway Patient id (as in the AuditEvents, e.g. de-sample.…)."
		}
		q.Patient = p
	}
	return q, ""
}

type timelineView struct {
	F          filter
	Rows       []eventRow
	Total      int
	Next, Prev int
	HasNext    bool
	HasPrev    bool
	Message    string
	Outcomes   []string
}

// timeline shows the AuditEvents, newest first, filtered. The filters are
// posted (a patient id never goes into a URL). Reading it is audited as an
// AuditEvent search.
func (c *Console) timeline(w http.ResponseWriter, r *http.Request, s *Session) {
	dec, req, ok := c.authorize(w, r, s, actAudit, true)
	if !ok {
		return
	}
	f := filter{}
	if r.Method == http.MethodPost {
		f = filter{From: r.PostFormValue("from"), To: r.PostFormValue("to"), Org: strings.TrimSpace(r.PostFormValue("org")),
			Country: strings.TrimSpace(r.PostFormValue("country")), Purpose: r.PostFormValue("purpose"),
			Outcome: r.PostFormValue("outcome"), Patient: r.PostFormValue("patient"), BreakGlass: r.PostFormValue("break_glass") == "on"}
		f.Offset, _ = strconv.Atoi(r.PostFormValue("offset"))
		f.Offset = max(f.Offset, 0)
	}
	v := timelineView{F: f, Outcomes: []string{audit.OutcomeSuccess, audit.OutcomeDenied, audit.OutcomeFailed}}
	q, msg := f.query()
	if msg != "" {
		v.Message = msg
		c.render(w, r, s, http.StatusBadRequest, "timeline", "Audit timeline", v)
		return
	}
	if c.opts.AuditSearch == nil {
		v.Message = "No audit records can be searched here."
		c.render(w, r, s, http.StatusOK, "timeline", "Audit timeline", v)
		return
	}
	raws, total, err := c.opts.AuditSearch.Search(r.Context(), q)
	if err != nil {
		c.errorPage(w, r, s, http.StatusServiceUnavailable, "The audit records cannot be searched now.")
		return
	}
	events, err := parseAll(raws)
	if err != nil {
		c.errorPage(w, r, s, http.StatusInternalServerError, "An audit record could not be read.")
		return
	}
	if _, err := c.record(r.Context(), req, actAudit, dec, http.StatusOK, func(e *audit.Entry) {
		if q.Patient != "" {
			e.Patient = "Patient/" + q.Patient
		}
	}); err != nil {
		c.errorPage(w, r, s, http.StatusServiceUnavailable, "The audit log is unavailable; nothing is shown without an audit record.")
		return
	}
	v.Rows, v.Total = c.rows(events), total
	v.HasPrev, v.Prev = f.Offset > 0, max(f.Offset-PageSize, 0)
	v.HasNext, v.Next = f.Offset+len(events) < total, f.Offset+PageSize
	c.render(w, r, s, http.StatusOK, "timeline", "Audit timeline", v)
}

func parseAll(raws []json.RawMessage) ([]audit.Event, error) {
	out := make([]audit.Event, 0, len(raws))
	for _, raw := range raws {
		e, err := audit.ParseEvent(raw)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// auditDecision shows a recorded policy decision to an auditor: the
// decision log's entry (its input holds no patient data) and how the
// rules in force explain it.
func (c *Console) auditDecision(w http.ResponseWriter, r *http.Request, s *Session) {
	if _, _, ok := c.authorize(w, r, s, actAudit, false); !ok {
		return
	}
	v := c.explain(r.Context(), strings.TrimSpace(r.URL.Query().Get("id")), "")
	status := http.StatusOK
	if v.ID != "" && v.Entry == nil {
		status = http.StatusNotFound
	}
	c.render(w, r, s, status, "explain", "Policy decision", v)
}

type queueView struct {
	Open     []eventRow
	Reviewed []reviewedRow
	Message  string
}

type reviewedRow struct {
	eventRow
	Review audit.Event
}

// breakGlass returns the break-the-glass events and the reviews of them.
func (c *Console) breakGlass(r *http.Request) (open []audit.Event, reviewed []reviewedRow, err error) {
	raws, _, err := c.opts.AuditSearch.Search(r.Context(), audit.Query{BreakGlass: true})
	if err != nil {
		return nil, nil, err
	}
	events, err := parseAll(raws)
	if err != nil {
		return nil, nil, err
	}
	raws, _, err = c.opts.AuditSearch.Search(r.Context(), audit.Query{Operation: actReview.Operation})
	if err != nil {
		return nil, nil, err
	}
	reviews, err := parseAll(raws)
	if err != nil {
		return nil, nil, err
	}
	byEvent := map[string]audit.Event{}
	for _, rv := range reviews {
		if rv.Review != nil && rv.Outcome == audit.OutcomeSuccess {
			if _, seen := byEvent[rv.Review.EventID]; !seen {
				byEvent[rv.Review.EventID] = rv // newest review first
			}
		}
	}
	for _, e := range events {
		if rv, ok := byEvent[e.ID]; ok {
			reviewed = append(reviewed, reviewedRow{eventRow: c.rows([]audit.Event{e})[0], Review: rv})
		} else {
			open = append(open, e)
		}
	}
	return open, reviewed, nil
}

func (c *Console) breakGlassQueue(w http.ResponseWriter, r *http.Request, s *Session) {
	dec, req, ok := c.authorize(w, r, s, actAudit, true)
	if !ok {
		return
	}
	if c.opts.AuditSearch == nil {
		c.render(w, r, s, http.StatusOK, "breakglass", "Break-the-glass review", queueView{Message: "No audit records can be searched here."})
		return
	}
	open, reviewed, err := c.breakGlass(r)
	if err != nil {
		c.errorPage(w, r, s, http.StatusServiceUnavailable, "The audit records cannot be searched now.")
		return
	}
	if _, err := c.record(r.Context(), req, actAudit, dec, http.StatusOK, nil); err != nil {
		c.errorPage(w, r, s, http.StatusServiceUnavailable, "The audit log is unavailable; nothing is shown without an audit record.")
		return
	}
	v := queueView{Open: c.rows(open), Reviewed: reviewed}
	if r.URL.Query().Get("done") == "reviewed" {
		v.Message = "The review is recorded."
	}
	c.render(w, r, s, http.StatusOK, "breakglass", "Break-the-glass review", v)
}

// reviewBreakGlass records an auditor's review of one break-the-glass
// access; the review is an AuditEvent of its own.
func (c *Console) reviewBreakGlass(w http.ResponseWriter, r *http.Request, s *Session) {
	dec, req, ok := c.authorize(w, r, s, actReview, true)
	if !ok {
		return
	}
	id, note := r.PostFormValue("event"), strings.TrimSpace(r.PostFormValue("note"))
	if note == "" || len(note) > 2000 {
		c.errorPage(w, r, s, http.StatusBadRequest, "Write a note (at most 2000 characters) saying what the review found.")
		return
	}
	if c.opts.AuditSearch == nil {
		c.errorPage(w, r, s, http.StatusNotFound, "No audit records can be searched here.")
		return
	}
	open, _, err := c.breakGlass(r)
	if err != nil {
		c.errorPage(w, r, s, http.StatusServiceUnavailable, "The audit records cannot be searched now.")
		return
	}
	i := slices.IndexFunc(open, func(e audit.Event) bool { return e.ID == id })
	if i < 0 {
		c.errorPage(w, r, s, http.StatusNotFound, "No break-the-glass access awaiting review has this id.")
		return
	}
	if _, err := c.record(r.Context(), req, actReview, dec, http.StatusOK, func(e *audit.Entry) {
		e.Review = &audit.Review{EventID: id, Note: note}
		if open[i].Patient != "" {
			e.Patient = "Patient/" + open[i].Patient
		}
	}); err != nil {
		c.errorPage(w, r, s, http.StatusServiceUnavailable, "The audit log is unavailable; the review was not recorded.")
		return
	}
	http.Redirect(w, r, Prefix+"/audit/break-glass?done=reviewed", http.StatusSeeOther)
}

type chainView struct {
	Available bool
	Report    audit.Report
	Err       string
	HeadSeq   uint64
	HeadHash  string
	Checked   time.Time
}

func (c *Console) chainStatus(w http.ResponseWriter, r *http.Request, s *Session) {
	if _, _, ok := c.authorize(w, r, s, actAudit, false); !ok {
		return
	}
	v := chainView{Available: c.opts.Chain != nil, Checked: c.opts.Now()}
	if c.opts.Chain != nil {
		rep, err := c.opts.Chain.VerifyChain(r.Context())
		v.Report = rep
		if err != nil {
			v.Err = err.Error()
		}
		v.HeadSeq, v.HeadHash = c.opts.Chain.Head()
	}
	c.render(w, r, s, http.StatusOK, "chain", "Audit chain", v)
}

type disclosureView struct {
	Patients string
	From, To string
	Rows     []eventRow
	Done     bool
	Message  string
	Printed  time.Time
}

// disclosures draws up the disclosure report for one patient (every
// gateway id the person has); CSV on request. It is decided by the policy
// as Patient/{id}/$disclosures is, and audited once per patient id.
func (c *Console) disclosures(w http.ResponseWriter, r *http.Request, s *Session) {
	dec, req, ok := c.authorize(w, r, s, actDisclose, r.Method == http.MethodPost)
	if !ok {
		return
	}
	v := disclosureView{Printed: c.opts.Now()}
	if r.Method != http.MethodPost {
		c.render(w, r, s, http.StatusOK, "disclosures", "Disclosure report", v)
		return
	}
	v.Patients, v.From, v.To = r.PostFormValue("patients"), r.PostFormValue("from"), r.PostFormValue("to")
	var q audit.DisclosureQuery
	for _, p := range fields(v.Patients) {
		p = strings.TrimPrefix(p, "Patient/")
		if !r4.IsID(p) {
			v.Message = "Name the patient by gateway Patient ids (as in the AuditEvents), separated by spaces."
			c.render(w, r, s, http.StatusBadRequest, "disclosures", "Disclosure report", v)
			return
		}
		q.Patients = append(q.Patients, p)
	}
	f := filter{From: v.From, To: v.To}
	aq, msg := f.query()
	if len(q.Patients) == 0 {
		msg = "Name the patient by at least one gateway Patient id."
	}
	if msg != "" {
		v.Message = msg
		c.render(w, r, s, http.StatusBadRequest, "disclosures", "Disclosure report", v)
		return
	}
	q.From, q.To = aq.DateFrom, aq.DateTo
	if c.opts.AuditSearch == nil {
		c.errorPage(w, r, s, http.StatusNotFound, "No audit records can be searched here.")
		return
	}
	events, _, err := audit.Disclosures(r.Context(), c.opts.AuditSearch, q)
	if err != nil {
		c.errorPage(w, r, s, http.StatusServiceUnavailable, "The audit records cannot be searched now.")
		return
	}
	if !c.recordEach(r, req, dec, q.Patients) {
		c.errorPage(w, r, s, http.StatusServiceUnavailable, "The audit log is unavailable; no report is drawn up without an audit record.")
		return
	}
	if r.PostFormValue("format") == "csv" {
		var buf bytes.Buffer
		if err := audit.WriteDisclosuresCSV(&buf, events); err != nil {
			c.errorPage(w, r, s, http.StatusInternalServerError, "The report could not be written.")
			return
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="disclosures.csv"`)
		_, _ = w.Write(buf.Bytes())
		return
	}
	v.Rows, v.Done = c.rows(events), true
	c.render(w, r, s, http.StatusOK, "disclosures", "Disclosure report", v)
}

// recordEach audits a disclosure report once per patient id, as BALP
// records one AuditEvent per patient.
func (c *Console) recordEach(r *http.Request, req auth.Requester, dec authz.Decision, patients []string) bool {
	for _, p := range patients {
		if _, err := c.record(r.Context(), req, actDisclose, dec, http.StatusOK, func(e *audit.Entry) { e.Patient = "Patient/" + p }); err != nil {
			return false
		}
	}
	return true
}
