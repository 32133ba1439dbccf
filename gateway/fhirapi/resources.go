package fhirapi

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/gateway/audit"
	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/authz"
	"github.com/migrant-health/mhg/gateway/federate"
	"github.com/migrant-health/mhg/gateway/search"
	"github.com/migrant-health/mhg/gateway/telemetry"
)

// Interactions as FHIR names them (and policies see them).
const (
	interactionRead   = "read"
	interactionSearch = "search-type"
	interactionOp     = "operation"
)

func served(typ string) bool { return slices.Contains(servedTypes, typ) }

// checkType answers 404 for a type the gateway does not serve.
func checkType(typ string) *Error {
	if !typeNamePattern.MatchString(typ) {
		return errorf(http.StatusNotFound, "not-supported", "unknown resource type")
	}
	if !served(typ) {
		return errorf(http.StatusNotFound, "not-supported", "resource type %s is not served by this gateway", typ)
	}
	return nil
}

func checkID(id string) *Error {
	if !r4.IsID(id) {
		return errorf(http.StatusBadRequest, "invalid", "malformed resource id")
	}
	return nil
}

func (h *Handler) request(c *gin.Context, interaction, typ, op string) federate.Request {
	r, _ := auth.FromContext(c.Request.Context())
	noCache := false
	for _, v := range c.Request.Header.Values("Cache-Control") {
		if strings.Contains(strings.ToLower(v), "no-cache") {
			noCache = true
		}
	}
	return federate.Request{Requester: r, Interaction: interaction, ResourceType: typ, Operation: op, NoCache: noCache}
}

// typeLevel serves GET /fhir/{type}: a search, or a system or type-level
// operation.
func (h *Handler) typeLevel(c *gin.Context) {
	typ := c.Param("type")
	if strings.HasPrefix(typ, "$") {
		h.operation(c, "", typ[1:], "")
		return
	}
	if typ == "Measure" && h.opts.Federation.Measures() != nil {
		h.measures(c, "")
		return
	}
	if e := checkType(typ); e != nil {
		h.fail(c, e)
		return
	}
	h.search(c, typ)
}

// instanceLevel serves GET /fhir/{type}/{id}: a read, or a type-level
// operation (Patient/$summary).
func (h *Handler) instanceLevel(c *gin.Context) {
	typ, id := c.Param("type"), c.Param("id")
	if strings.HasPrefix(id, "$") {
		h.operation(c, typ, id[1:], "")
		return
	}
	if id == "_search" {
		h.fail(c, errorf(http.StatusMethodNotAllowed, "not-supported", "search by POST is not supported; use GET"))
		return
	}
	if typ == "Measure" && h.opts.Federation.Measures() != nil {
		if e := checkID(id); e != nil {
			h.fail(c, e)
			return
		}
		h.measures(c, id)
		return
	}
	if e := checkType(typ); e != nil {
		h.fail(c, e)
		return
	}
	if e := checkID(id); e != nil {
		h.fail(c, e)
		return
	}
	h.read(c, typ, id)
}

func (h *Handler) instanceOperation(c *gin.Context) {
	typ, id, op := c.Param("type"), c.Param("id"), c.Param("op")
	if !strings.HasPrefix(op, "$") {
		h.fail(c, errorf(http.StatusNotFound, "not-found", "no such endpoint"))
		return
	}
	if e := checkID(id); e != nil {
		h.fail(c, e)
		return
	}
	h.operation(c, typ, op[1:], id)
}

func (h *Handler) postTypeLevel(c *gin.Context) {
	typ := c.Param("type")
	if strings.HasPrefix(typ, "$") {
		h.operation(c, "", typ[1:], "")
		return
	}
	h.fail(c, errorf(http.StatusMethodNotAllowed, "not-supported", "this gateway is read-only"))
}

func (h *Handler) postInstanceLevel(c *gin.Context) {
	typ, id := c.Param("type"), c.Param("id")
	if strings.HasPrefix(id, "$") {
		h.operation(c, typ, id[1:], "")
		return
	}
	h.fail(c, errorf(http.StatusMethodNotAllowed, "not-supported", "this gateway is read-only"))
}

func (h *Handler) operation(c *gin.Context, typ, name, id string) {
	level := "type"
	switch {
	case typ == "":
		level = "system"
	case id != "":
		level = "instance"
	}
	op, ok := h.ops[opKey(level, typ, name)]
	if !ok || !slices.Contains(op.Methods, c.Request.Method) {
		if ok {
			h.fail(c, errorf(http.StatusMethodNotAllowed, "not-supported", "operation $%s does not accept %s", name, c.Request.Method))
			return
		}
		h.fail(c, errorf(http.StatusNotFound, "not-supported", "operation $%s is not supported here", name))
		return
	}
	op.Handle(h, c, typ, id)
}

func (h *Handler) read(c *gin.Context, typ, id string) {
	sp, e := parseSearch(typ, c.Request.URL.Query(), false, 1, 1)
	if e != nil {
		h.fail(c, e)
		return
	}
	req := h.request(c, interactionRead, typ, "")
	res, err := h.opts.Federation.Read(c.Request.Context(), req, typ, id)
	if err != nil {
		h.finish(c, req, res, err, 0, nil)
		return
	}
	entry := res.Entries[0]
	if sp.Elements != nil {
		applyElements(r4.Resource(entry.Resource), sp.Elements)
	}
	body, err := h.marshal(entry.Resource)
	if err != nil {
		h.finish(c, req, res, err, 0, nil)
		return
	}
	h.finish(c, req, res, nil, http.StatusOK, body)
}

func (h *Handler) search(c *gin.Context, typ string) {
	q := c.Request.URL.Query()
	sp, e := parseSearch(typ, q, handlingStrict(c.Request.Header), h.opts.DefaultCount, h.opts.MaxCount)
	if e != nil {
		h.fail(c, e)
		return
	}
	req := h.request(c, interactionSearch, typ, "")
	ctx := c.Request.Context()
	var res *federate.Result
	var err error
	switch {
	case sp.Values["_id"] != "":
		if e := checkID(sp.Values["_id"]); e != nil {
			h.fail(c, e)
			return
		}
		res, err = h.opts.Federation.Read(ctx, req, typ, sp.Values["_id"])
		if errors.Is(err, federate.ErrNotFound) {
			res, err = &federate.Result{}, nil
		}
	case typ == "Patient":
		if sp.Values["identifier"] == "" {
			h.fail(c, errorf(http.StatusBadRequest, "required", "searching Patient needs identifier=system|value (or _id)"))
			return
		}
		res, err = h.opts.Federation.SearchPatients(ctx, req, sp.Values["identifier"])
	default:
		pid := sp.Values["patient"]
		if pid == "" {
			h.fail(c, errorf(http.StatusBadRequest, "required", "searching %s needs patient=<id>", typ))
			return
		}
		if e := checkID(pid); e != nil {
			h.fail(c, e)
			return
		}
		res, err = h.opts.Federation.SearchByPatient(ctx, req, typ, pid)
	}
	if err != nil {
		h.finish(c, req, res, err, 0, nil)
		return
	}
	if sp.Query != nil {
		// Criteria are evaluated on what the policy released (package
		// search says why nothing is pushed down to the sources); the
		// AuditEvent then counts what the search returned.
		res.Entries = search.Apply(sp.Query, res.Entries, func(e federate.Entry) proto.Message { return r4.Resource(e.Resource) })
	}
	body, err := h.searchset(typ, q, sp, res)
	if err != nil {
		h.finish(c, req, res, err, 0, nil)
		return
	}
	h.finish(c, req, res, nil, http.StatusOK, body)
}

// searchset renders one page of a search. Bundle.total counts released
// resources only, so it never reveals how many the policy withheld.
func (h *Handler) searchset(typ string, q map[string][]string, sp searchParams, res *federate.Result) ([]byte, error) {
	total := len(res.Entries)
	b := bundle{ResourceType: "Bundle", Type: "searchset", Timestamp: now(), Total: &total,
		Meta: &bundleMeta{LastUpdated: now()}}
	count := sp.Count
	if sp.SummaryCount {
		count = 0
	}
	b.Link = pageLinks(h.opts.BaseURL, typ, q, sp.Offset, count, total)
	if sp.SummaryCount {
		return mustJSON(b), nil
	}
	lo := min(sp.Offset, total)
	hi := min(lo+count, total)
	page := res.Entries[lo:hi]
	var loss []Issue
	for _, e := range page {
		if sp.Elements != nil {
			applyElements(r4.Resource(e.Resource), sp.Elements)
		}
		js, err := h.marshal(e.Resource)
		if err != nil {
			return nil, fmt.Errorf("render %s: %w", e.Type, err)
		}
		b.Entry = append(b.Entry, bundleEntry{
			FullURL: h.opts.BaseURL + "/" + e.Type + "/" + e.ID, Resource: js, Search: &entrySearch{Mode: "match"},
		})
		for _, l := range e.Loss {
			loss = append(loss, lossIssue(e, l.Severity, l.Code, l.Path, l.Message))
		}
	}
	if oo := h.searchOutcome(res.Warnings, sp.Ignored, loss); oo != nil {
		b.Entry = append(b.Entry, outcomeEntry(oo))
	}
	return mustJSON(b), nil
}

func lossIssue(e federate.Entry, severity, code, path, msg string) Issue {
	switch severity {
	case "fatal", "error", "warning", "information":
	default:
		severity = "information"
	}
	if code == "" {
		code = "informational"
	}
	is := Issue{Severity: severity, Code: code, Diagnostics: fmt.Sprintf("%s/%s: %s", e.Type, e.ID, msg)}
	if path != "" {
		is.Expression = []string{path}
	}
	return is
}

// searchOutcome lists what the client should know about the result:
// sources that could not contribute, parameters ignored, and what the
// mappings could not carry over.
func (h *Handler) searchOutcome(warnings []federate.Warning, ignored []string, loss []Issue) *Outcome {
	var issues []Issue
	for _, w := range warnings {
		issues = append(issues, sourceIssue(w, "results"))
	}
	if len(ignored) > 0 {
		issues = append(issues, Issue{Severity: "information", Code: "not-supported",
			Diagnostics: "ignored unknown search parameters: " + strings.Join(ignored, ", ")})
	}
	issues = append(issues, loss...)
	if len(issues) == 0 {
		return nil
	}
	return &Outcome{ResourceType: "OperationOutcome", Issue: issues}
}

// finish audits the request, then answers. No answer about patient data,
// allowed or refused, leaves before its AuditEvent is written: if the
// audit log fails, the client gets 503 whatever the answer would have been.
func (h *Handler) finish(c *gin.Context, req federate.Request, res *federate.Result, err error, status int, body []byte) {
	h.finishWith(c, req, res, err, status, nil, func() { h.write(c, status, body) })
}

// finishWith is finish for answers that send themselves: amend (when not
// nil) adds to the AuditEvent entry, and send writes the answer once it is
// audited.
func (h *Handler) finishWith(c *gin.Context, req federate.Request, res *federate.Result, err error, status int, amend func(*audit.Entry), send func()) {
	var e *Error
	if err != nil {
		e = asError(err)
		status = e.Status
	}
	entry := h.auditEntry(c, req, res, status)
	if amend != nil {
		amend(&entry)
	}
	auditID, aerr := h.opts.Auditor.Record(c.Request.Context(), entry)
	if aerr != nil {
		h.log.ErrorContext(c.Request.Context(), "audit record not written", "route", c.FullPath(), "error.type", telemetry.ErrorType(aerr))
		h.fail(c, &Error{Status: http.StatusServiceUnavailable, Code: "transient",
			Message: "the audit log is unavailable; no answer about patient data leaves without an audit record", Err: aerr})
		return
	}
	if e != nil {
		h.fail(c, e)
		return
	}
	h.notify(c, auditID, entry, res)
	send()
}

// notify hands the notify obligations of a released request to the
// Notifier, once per target and rule.
func (h *Handler) notify(c *gin.Context, auditID string, entry audit.Entry, res *federate.Result) {
	if h.opts.Notifier == nil || res == nil || !res.Notify {
		return
	}
	n := audit.Notification{
		AuditEventID: auditID, Time: entry.Time, RequesterOrg: entry.Requester.Org,
		RequesterCountry: entry.Requester.Country, Role: entry.Requester.Role,
		Purpose: entry.Requester.PurposeOfUse, BreakGlass: entry.BreakGlass,
	}
	seen := map[string]bool{}
	for _, d := range res.Decisions {
		for _, o := range d.Decision.Obligations {
			if o.Kind != authz.ObligationNotify || seen[o.Target+"\x00"+o.Rule] {
				continue
			}
			seen[o.Target+"\x00"+o.Rule] = true
			if !slices.Contains(n.Targets, o.Target) {
				n.Targets = append(n.Targets, o.Target)
			}
			if !slices.Contains(n.Rules, o.Rule) {
				n.Rules = append(n.Rules, o.Rule)
			}
		}
	}
	if len(n.Targets) > 0 {
		h.opts.Notifier.Notify(c.Request.Context(), n)
	}
}

func (h *Handler) auditEntry(c *gin.Context, req federate.Request, res *federate.Result, status int) audit.Entry {
	ctx := c.Request.Context()
	sc := trace.SpanContextFromContext(ctx)
	entry := audit.Entry{
		Time:         time.Now().UTC(),
		Requester:    req.Requester,
		Interaction:  req.Interaction,
		ResourceType: req.ResourceType,
		Operation:    req.Operation,
		Status:       status,
		BreakGlass:   req.Requester.BreakGlass,
		Released:     map[string]int{},
	}
	if sc.IsValid() {
		entry.TraceID, entry.SpanID = sc.TraceID().String(), sc.SpanID().String()
	} else if id, ok := c.Get(ctxRequestID); ok {
		entry.TraceID, _ = id.(string)
	}
	switch {
	case status >= 200 && status < 300:
		entry.Outcome = audit.OutcomeSuccess
	case status == http.StatusForbidden:
		entry.Outcome = audit.OutcomeDenied
	default:
		entry.Outcome = audit.OutcomeFailed
	}
	if res == nil {
		return entry
	}
	entry.Patient = res.Patient
	entry.Sources = res.Contacted
	entry.BreakGlass = entry.BreakGlass || res.Notify
	if status >= 200 && status < 300 {
		for _, e := range res.Entries {
			entry.Released[e.Type]++
			if entry.Patient == "" && e.Type == "Patient" && len(res.Entries) == 1 {
				entry.Patient = "Patient/" + e.ID
			}
		}
	}
	if req.Operation == opMatch && req.ResourceType == "Patient" {
		matchAudit(&entry, req, res, status)
	}
	for _, d := range res.Decisions {
		entry.Decisions = append(entry.Decisions, audit.Decision{
			ID: d.Decision.ID, Phase: d.Phase, Source: d.Source, Allow: d.Decision.Allow,
			Reasons: d.Decision.Reasons, Revision: d.Decision.Revision,
			Agreements: d.Decision.Agreements, Class: d.Class,
		})
	}
	return entry
}
