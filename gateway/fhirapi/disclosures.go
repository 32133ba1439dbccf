package fhirapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/migrant-health/mhg/conformance"
	"github.com/migrant-health/mhg/gateway/audit"
)

// opDisclosures is the accounting of disclosures for one patient.
const opDisclosures = "disclosures"

// disclosuresInputs are the parameters $disclosures understands.
var disclosuresInputs = map[string]bool{"date": true}

// DisclosuresOperation serves GET|POST Patient/{id}/$disclosures: every
// AuditEvent that names the patient, oldest first, as a searchset Bundle
// (the raw material of an accounting of disclosures, the same records the
// console's disclosure report shows). date=geYYYY-MM-DD and date=le...
// bound the period. The policy lets auditors only draw it up
// (disclosures.rego), and the request is audited.
func DisclosuresOperation() Operation {
	return Operation{Name: opDisclosures, Level: "instance", ResourceType: "Patient", Definition: conformance.OpDisclosures,
		Methods: []string{http.MethodGet, http.MethodPost},
		Handle:  func(h *Handler, c *gin.Context, _, id string) { h.disclosures(c, id) }}
}

func (h *Handler) disclosures(c *gin.Context, id string) {
	p, ignored, e := h.readParams(c, disclosuresInputs)
	if e != nil {
		h.fail(c, e)
		return
	}
	var bounds audit.Query
	for _, d := range p["date"] {
		if e := dateBound(&bounds, d); e != nil {
			h.fail(c, e)
			return
		}
	}
	req := h.request(c, interactionOp, "Patient", opDisclosures)
	res, err := h.opts.Federation.Authorize(c.Request.Context(), req)
	if res != nil {
		res.Patient = "Patient/" + id
	}
	if err != nil {
		h.finish(c, req, res, err, 0, nil)
		return
	}
	if h.opts.AuditSearch == nil {
		h.finish(c, req, res, errorf(http.StatusNotFound, "not-supported", "audit search is not enabled"), 0, nil)
		return
	}
	_, raws, err := audit.Disclosures(c.Request.Context(), h.opts.AuditSearch,
		audit.DisclosureQuery{Patients: []string{id}, From: bounds.DateFrom, To: bounds.DateTo})
	if err != nil {
		h.finish(c, req, res, &Error{Status: http.StatusServiceUnavailable, Code: "transient", Message: "the audit records cannot be searched now", Err: err}, 0, nil)
		return
	}
	total := len(raws)
	b := bundle{ResourceType: "Bundle", Type: "searchset", Timestamp: now(), Total: &total, Meta: &bundleMeta{LastUpdated: now()}}
	for _, ev := range raws {
		ae, _ := audit.ParseEvent(ev)
		b.Entry = append(b.Entry, bundleEntry{FullURL: h.opts.BaseURL + "/AuditEvent/" + ae.ID, Resource: ev, Search: &entrySearch{Mode: "match"}})
	}
	if oo := h.searchOutcome(nil, ignored, nil); oo != nil {
		b.Entry = append(b.Entry, outcomeEntry(oo))
	}
	h.finish(c, req, res, nil, http.StatusOK, mustJSON(b))
}
