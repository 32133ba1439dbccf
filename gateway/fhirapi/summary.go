package fhirapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/migrant-health/mhg/conformance"
	"github.com/migrant-health/mhg/conformance/narrative"
	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/gateway/federate"
	"github.com/migrant-health/mhg/gateway/summary"
)

// PatientOperations are the patient-level operations a Linker answers:
// $summary at type level (Patient/$summary?identifier=system|value) and
// instance level (Patient/{id}/$summary), GET and POST, and $everything at
// instance level, GET. New registers them over the Handler's Federation
// with the default identity registry; pass them in Options.Operations to
// use a Linker configured otherwise (they replace the defaults).
func PatientOperations(l *federate.Linker) []Operation {
	summary := func(h *Handler, c *gin.Context, _, id string) { h.summary(c, l, id) }
	methods := []string{http.MethodGet, http.MethodPost}
	return []Operation{
		{Name: "summary", Level: "type", ResourceType: "Patient", Definition: conformance.OpSummary, Methods: methods, Handle: summary},
		{Name: "summary", Level: "instance", ResourceType: "Patient", Definition: conformance.OpSummary, Methods: methods, Handle: summary},
		{Name: "everything", Level: "instance", ResourceType: "Patient", Definition: conformance.OpEverything,
			Methods: []string{http.MethodGet}, Handle: func(h *Handler, c *gin.Context, _, id string) { h.everything(c, l, id) }},
	}
}

// defaultPatientOperations are PatientOperations over fed with the default
// identity registry.
func defaultPatientOperations(fed *federate.Service) ([]Operation, error) {
	l, err := federate.NewLinker(fed, federate.LinkerOptions{})
	if err != nil {
		return nil, err
	}
	return PatientOperations(l), nil
}

const (
	opSummary    = "summary"
	opEverything = "everything"
)

// ipsVersions are the IPS releases whose Composition profile a summary
// conforms to (MHP is built on IPS 2.0.1).
var ipsVersions = map[string]bool{"2.0.0": true, "2.0.1": true}

// parseProfile checks the $summary profile parameter: the MHP Composition
// canonical (optionally |version, the shipped one) or the IPS one
// (optionally |2.0.x). It returns what the Composition claims beside the
// MHP profile: nothing, or the IPS canonical.
func parseProfile(v string) (claim string, ok bool) {
	u, version, versioned := strings.Cut(v, "|")
	switch u {
	case conformance.ProfileComposition:
		if !versioned {
			return "", true
		}
		if _, shipped := conformance.Artifact(v); shipped && version != "" {
			return "", true
		}
	case federate.ProfileIPSComposition:
		if !versioned || ipsVersions[version] {
			return federate.ProfileIPSComposition, true
		}
	}
	return "", false
}

// opParams are an operation's input parameters: name to values, from the
// query and (POST) a Parameters body.
type opParams map[string][]string

// summaryInputs are the parameters $summary understands.
var summaryInputs = map[string]bool{"identifier": true, "profile": true}

// formatParams shape the response, not the operation; handled elsewhere.
var formatParams = map[string]bool{"_format": true, "_pretty": true}

// readParams collects the parameters of an operation call: the query, and
// for POST a Parameters resource (application/fhir+json). Names outside
// known are ignored, or refused when the client asked for strict handling.
func (h *Handler) readParams(c *gin.Context, known map[string]bool) (opParams, []string, *Error) {
	p := opParams{}
	for k, vs := range c.Request.URL.Query() {
		p[k] = append(p[k], vs...)
	}
	if c.Request.Method == http.MethodPost {
		body, e := h.readBody(c)
		if e != nil {
			return nil, nil, e
		}
		if len(strings.TrimSpace(string(body))) > 0 {
			fromBody, err := parseParameters(body)
			if err != nil {
				return nil, nil, err
			}
			for k, vs := range fromBody {
				p[k] = append(p[k], vs...)
			}
		}
	}
	var ignored []string
	for k := range p {
		if known[k] || formatParams[k] {
			continue
		}
		if handlingStrict(c.Request.Header) {
			return nil, nil, errorf(http.StatusBadRequest, "not-supported", "unknown parameter %s", safeParam(k))
		}
		ignored = append(ignored, safeParam(k))
		delete(p, k)
	}
	sort.Strings(ignored)
	return p, ignored, nil
}

// safeParam quotes a client's parameter name, cut short; values never go
// into messages.
func safeParam(name string) string {
	if len(name) > 40 {
		name = name[:40] + "..."
	}
	return fmt.Sprintf("%q", name)
}

func (h *Handler) readBody(c *gin.Context) ([]byte, *Error) {
	if ct := c.GetHeader("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !jsonTypes[mt] {
			return nil, errorf(http.StatusUnsupportedMediaType, "not-supported", "send the operation's parameters as a Parameters resource (application/fhir+json)")
		}
	}
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, errorf(http.StatusRequestEntityTooLarge, "too-long", "request body larger than %d bytes", h.opts.MaxBodyBytes)
		}
		return nil, errorf(http.StatusBadRequest, "invalid", "the request body could not be read")
	}
	return body, nil
}

// parametersBody is the part of an R4 Parameters resource the operations
// read: named primitive values and Identifiers.
type parametersBody struct {
	ResourceType string `json:"resourceType"`
	Parameter    []struct {
		Name            string  `json:"name"`
		ValueString     *string `json:"valueString"`
		ValueURI        *string `json:"valueUri"`
		ValueCanonical  *string `json:"valueCanonical"`
		ValueCode       *string `json:"valueCode"`
		ValueDate       *string `json:"valueDate"`
		ValueDateTime   *string `json:"valueDateTime"`
		ValueInteger    *int    `json:"valueInteger"`
		ValueIdentifier *struct{ System, Value string }
		Resource        json.RawMessage `json:"resource"`
		Part            json.RawMessage `json:"part"`
	} `json:"parameter"`
}

// parseParameters reads a Parameters body into name/value pairs. An
// Identifier value becomes "system|value" (token syntax). The body must be
// valid R4; messages never quote it except in the diagnostics, which go
// back to the sender only.
func parseParameters(body []byte) (opParams, *Error) {
	var p parametersBody
	if err := json.Unmarshal(body, &p); err != nil || p.ResourceType != "Parameters" {
		return nil, errorf(http.StatusBadRequest, "invalid", "the body must be a Parameters resource")
	}
	if _, err := r4.Parse(body); err != nil {
		return nil, &Error{Status: http.StatusBadRequest, Code: "structure", Message: "the Parameters resource is not valid FHIR R4", Diagnostics: err.Error()}
	}
	out := opParams{}
	for _, prm := range p.Parameter {
		var v *string
		for _, c := range []*string{prm.ValueString, prm.ValueURI, prm.ValueCanonical, prm.ValueCode, prm.ValueDate, prm.ValueDateTime} {
			if c != nil {
				v = c
			}
		}
		switch {
		case v != nil:
			out[prm.Name] = append(out[prm.Name], *v)
		case prm.ValueInteger != nil:
			out[prm.Name] = append(out[prm.Name], fmt.Sprint(*prm.ValueInteger))
		case prm.ValueIdentifier != nil:
			out[prm.Name] = append(out[prm.Name], tokenValue(prm.ValueIdentifier.System, prm.ValueIdentifier.Value))
		default:
			return nil, errorf(http.StatusBadRequest, "not-supported", "parameter %s: only primitive and Identifier values are accepted", safeParam(prm.Name))
		}
	}
	return out, nil
}

// tokenValue renders an Identifier as a token search value.
func tokenValue(system, value string) string {
	esc := strings.NewReplacer(`\`, `\\`, `|`, `\|`, `,`, `\,`, `$`, `\$`)
	return esc.Replace(system) + "|" + esc.Replace(value)
}

// one returns the single value of a 0..1 parameter.
func (p opParams) one(name string) (string, *Error) {
	vs := p[name]
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		return vs[0], nil
	}
	return "", errorf(http.StatusBadRequest, "invalid", "parameter %s may be given once", name)
}

// summary serves Patient/$summary and Patient/{id}/$summary.
func (h *Handler) summary(c *gin.Context, l *federate.Linker, id string) {
	p, _, e := h.readParams(c, summaryInputs)
	if e != nil {
		h.fail(c, e)
		return
	}
	identifier, e := p.one("identifier")
	if e != nil {
		h.fail(c, e)
		return
	}
	profile, e := p.one("profile")
	if e != nil {
		h.fail(c, e)
		return
	}
	switch {
	case id != "" && identifier != "":
		h.fail(c, errorf(http.StatusBadRequest, "invalid", "identifier is not allowed at instance level: Patient/{id}/$summary names the patient"))
		return
	case id == "" && identifier == "":
		h.fail(c, errorf(http.StatusBadRequest, "required", "Patient/$summary needs identifier=system|value"))
		return
	case identifier != "":
		if e := checkToken("identifier", identifier); e != nil {
			h.fail(c, e)
			return
		}
	}
	var claims []string
	if profile != "" {
		claim, ok := parseProfile(profile)
		if !ok {
			h.fail(c, errorf(http.StatusBadRequest, "not-supported",
				"profile must be %s (optionally |version) or %s; the gateway answers in the MHP, which is IPS",
				conformance.ProfileComposition, federate.ProfileIPSComposition))
			return
		}
		if claim != "" {
			claims = append(claims, claim)
		}
	}
	lang := narrative.Negotiate(c.Request.Header.Values("Accept-Language")...)
	req := h.request(c, interactionOp, "Patient", opSummary)
	res, doc, err := l.Summary(c.Request.Context(), req, federate.SummaryRequest{
		Patient:  federate.PatientQuery{ID: id, Identifier: identifier},
		Language: lang, BaseURL: h.opts.BaseURL, Profiles: claims,
	})
	if err != nil {
		h.finish(c, req, res, err, 0, nil)
		return
	}
	c.Header("Content-Language", lang)
	c.Header("Vary", "Accept-Language")
	h.finish(c, req, res, nil, http.StatusOK, doc)
}

// everythingInputs are the parameters $everything understands.
var everythingInputs = map[string]bool{"_count": true, "_offset": true, "_type": true}

// everything serves Patient/{id}/$everything: a searchset Bundle paged
// with _count and _offset. Each page is computed from the sources (through
// the cache), so its links repeat the client's own query.
func (h *Handler) everything(c *gin.Context, l *federate.Linker, id string) {
	p, ignored, e := h.readParams(c, everythingInputs)
	if e != nil {
		h.fail(c, e)
		return
	}
	count, offset, e := h.paging(p)
	if e != nil {
		h.fail(c, e)
		return
	}
	var types []string
	if t, e := p.one("_type"); e != nil {
		h.fail(c, e)
		return
	} else if t != "" {
		for _, typ := range strings.Split(t, ",") {
			typ = strings.TrimSpace(typ)
			if !typeNamePattern.MatchString(typ) {
				h.fail(c, errorf(http.StatusBadRequest, "invalid", "_type lists resource type names"))
				return
			}
			types = append(types, typ)
		}
	}
	req := h.request(c, interactionOp, "Patient", opEverything)
	res, err := l.Everything(c.Request.Context(), req, federate.EverythingRequest{Patient: federate.PatientQuery{ID: id}, Types: types})
	if err != nil {
		h.finish(c, req, res, err, 0, nil)
		return
	}
	total := len(res.Entries)
	b := bundle{ResourceType: "Bundle", Type: "searchset", Timestamp: now(), Total: &total, Meta: &bundleMeta{LastUpdated: now()}}
	q := url.Values{}
	for k, vs := range p {
		q[k] = vs
	}
	b.Link = pageLinks(h.opts.BaseURL, "Patient/"+id+"/$everything", q, offset, count, total)
	lo := min(offset, total)
	hi := min(lo+count, total)
	var loss []Issue
	stamp := time.Now()
	for _, en := range res.Entries[lo:hi] {
		js, err := h.marshal(en.Resource)
		if err != nil {
			h.finish(c, req, res, err, 0, nil)
			return
		}
		b.Entry = append(b.Entry, bundleEntry{FullURL: h.opts.BaseURL + "/" + en.Type + "/" + en.ID, Resource: js, Search: &entrySearch{Mode: "match"}})
		prov, err := l.Provenance(en, stamp)
		if err != nil {
			h.finish(c, req, res, err, 0, nil)
			return
		}
		var pid struct{ ID string }
		_ = json.Unmarshal(prov, &pid)
		b.Entry = append(b.Entry, bundleEntry{FullURL: "urn:uuid:" + pid.ID, Resource: prov, Search: &entrySearch{Mode: "include"}})
		for _, is := range summary.ReportableLoss(en.Loss) {
			loss = append(loss, lossIssue(en, is.Severity, is.Code, is.Path, is.Message))
		}
	}
	if oo := h.searchOutcome(res.Warnings, ignored, loss); oo != nil {
		b.Entry = append(b.Entry, outcomeEntry(oo))
	}
	h.finish(c, req, res, nil, http.StatusOK, mustJSON(b))
}

// paging reads _count and _offset: whole numbers, _count at least 1 and at
// most MaxCount.
func (h *Handler) paging(p opParams) (count, offset int, e *Error) {
	count, offset = h.opts.DefaultCount, 0
	if v, e := p.one("_count"); e != nil {
		return 0, 0, e
	} else if v != "" {
		n, ok := wholeNumber(v)
		if !ok || n < 1 {
			return 0, 0, errorf(http.StatusBadRequest, "invalid", "_count must be a whole number from 1")
		}
		count = min(n, h.opts.MaxCount)
	}
	if v, e := p.one("_offset"); e != nil {
		return 0, 0, e
	} else if v != "" {
		n, ok := wholeNumber(v)
		if !ok {
			return 0, 0, errorf(http.StatusBadRequest, "invalid", "_offset must be a whole number")
		}
		offset = n
	}
	return count, offset, nil
}

// wholeNumber parses a non-negative decimal integer of at most 9 digits.
func wholeNumber(s string) (int, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	n := 0
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, false
		}
		n = n*10 + int(r-'0')
	}
	return n, true
}
