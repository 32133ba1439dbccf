package fhirapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/migrant-health/mhg/conformance"
	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/mappings"
)

// Mapper maps national resources into the MHP for $to-mhp.
type Mapper interface {
	MapAll(profile string, in []byte, opts mappings.Options) (mappings.Result, error)
	Profiles() []string
}

// toMHPOperation is POST [base]/$to-mhp?profile=<id>: EHR vendors send a
// national resource or Bundle and get the MHP result, or an
// OperationOutcome listing what could not be mapped. Nothing is stored,
// no source is contacted and the input is not audited as a disclosure: the
// data is the caller's own.
func toMHPOperation() Operation {
	return Operation{
		Name: "to-mhp", Level: "system", Definition: conformance.OpToMHP, Methods: []string{http.MethodPost},
		Handle: func(h *Handler, c *gin.Context, _, _ string) { h.toMHP(c) },
	}
}

func (h *Handler) toMHP(c *gin.Context) {
	if h.opts.Mapper == nil {
		h.fail(c, errorf(http.StatusNotFound, "not-supported", "$to-mhp is not enabled"))
		return
	}
	if ct := c.GetHeader("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !jsonTypes[mt] {
			h.fail(c, errorf(http.StatusUnsupportedMediaType, "not-supported", "send application/fhir+json"))
			return
		}
	}
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.fail(c, errorf(http.StatusRequestEntityTooLarge, "too-long", "request body larger than %d bytes", h.opts.MaxBodyBytes))
			return
		}
		h.fail(c, errorf(http.StatusBadRequest, "invalid", "the request body could not be read"))
		return
	}
	profile, in := profileAndResource(c, body)
	if profile == "" {
		h.fail(c, errorf(http.StatusBadRequest, "required", "the profile parameter is required (%s)", strings.Join(h.opts.Mapper.Profiles(), ", ")))
		return
	}
	if !slices.Contains(h.opts.Mapper.Profiles(), profile) {
		h.fail(c, errorf(http.StatusBadRequest, "not-supported", "unknown national profile; known: %s", strings.Join(h.opts.Mapper.Profiles(), ", ")))
		return
	}
	if len(in) == 0 {
		h.fail(c, errorf(http.StatusBadRequest, "required", "send the national resource or Bundle as the body"))
		return
	}
	if _, err := r4.Parse(in); err != nil {
		// The parser's text may quote the document: it goes back to its
		// sender only, never to the log.
		h.fail(c, &Error{Status: http.StatusBadRequest, Code: "structure", Message: "the input is not valid FHIR R4", Diagnostics: err.Error()})
		return
	}
	res, err := h.opts.Mapper.MapAll(profile, in, mappings.Options{SourceID: "to-mhp"})
	if err != nil {
		oo := mappingOutcome(res.Issues)
		if len(oo.Issue) == 0 {
			oo.Issue = []Issue{{Severity: "error", Code: "not-supported", Diagnostics: "the input cannot be mapped: " + err.Error()}}
		}
		h.write(c, http.StatusUnprocessableEntity, mustJSON(oo))
		return
	}
	// The answer is one Bundle (the operation's single "return"): the MHP
	// resources, then the loss report as an OperationOutcome entry. (A
	// Parameters answer with resources cannot be validated by the R4
	// codec, which does not support Parameters.parameter.resource.)
	b := bundle{ResourceType: "Bundle", Type: "collection", Timestamp: now()}
	for _, o := range res.Outputs {
		b.Entry = append(b.Entry, bundleEntry{FullURL: fmt.Sprintf("urn:mhg:to-mhp:%s/%s", o.Type, o.ID), Resource: o.JSON})
	}
	if len(res.Issues) > 0 {
		b.Entry = append(b.Entry, bundleEntry{FullURL: "urn:mhg:to-mhp:loss-report", Resource: mustJSON(mappingOutcome(res.Issues))})
	}
	h.write(c, http.StatusOK, mustJSON(b))
}

// profileAndResource reads the profile and resource parameters of $to-mhp
// and $validate: the resource is the body, or the "resource" of a
// Parameters body; the profile is the query's, else the Parameters'.
func profileAndResource(c *gin.Context, body []byte) (profile string, resource []byte) {
	profile, resource = c.Query("profile"), body
	if p, res, ok := fromParameters(body); ok {
		if profile == "" {
			profile = p
		}
		resource = res
	}
	return profile, resource
}

// fromParameters unpacks a Parameters body ({profile, resource}), as
// $to-mhp and $validate take it.
func fromParameters(body []byte) (profile string, resource []byte, ok bool) {
	var p struct {
		ResourceType string `json:"resourceType"`
		Parameter    []struct {
			Name           string          `json:"name"`
			ValueCode      string          `json:"valueCode"`
			ValueStr       string          `json:"valueString"`
			ValueURI       string          `json:"valueUri"`
			ValueCanonical string          `json:"valueCanonical"`
			Resource       json.RawMessage `json:"resource"`
		} `json:"parameter"`
	}
	if json.Unmarshal(body, &p) != nil || p.ResourceType != "Parameters" {
		return "", nil, false
	}
	for _, prm := range p.Parameter {
		switch prm.Name {
		case "profile":
			profile = prm.ValueCode + prm.ValueStr + prm.ValueURI + prm.ValueCanonical
		case "resource":
			resource = prm.Resource
		}
	}
	return profile, resource, true
}

func mappingOutcome(issues []mappings.Issue) Outcome {
	oo := Outcome{ResourceType: "OperationOutcome", Issue: []Issue{}}
	for _, is := range issues {
		sev := is.Severity
		switch sev {
		case "fatal", "error", "warning", "information":
		default:
			sev = "information"
		}
		code := is.Code
		if code == "" {
			code = "informational"
		}
		i := Issue{Severity: sev, Code: code, Diagnostics: is.Message}
		if is.Path != "" {
			i.Expression = []string{is.Path}
		}
		oo.Issue = append(oo.Issue, i)
	}
	return oo
}
