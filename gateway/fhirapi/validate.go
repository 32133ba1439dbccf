package fhirapi

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/migrant-health/mhg/conformance"
)

// opValidateDefinition is the canonical of FHIR's own $validate.
const opValidateDefinition = "http://hl7.org/fhir/OperationDefinition/Resource-validate"

// validateOperations are POST [base]/$validate and POST [base]/[type]/$validate
// for every served type: an integrator sends MHP data (a resource or a
// document Bundle, as is or as the "resource" of a Parameters) and gets an
// OperationOutcome from the MHP profile checker, each issue with a
// FHIRPath-like location. The optional profile parameter checks against a
// shipped MHP profile besides those the resource claims. Nothing is stored,
// no source is contacted and nothing is audited: the data is the caller's
// own. A resource that does not conform is still a 200 with error issues,
// as FHIR specifies; a request that cannot be validated at all (no body, an
// unknown profile) is a 400.
func validateOperations() []Operation {
	handle := func(h *Handler, c *gin.Context, typ, _ string) { h.validate(c, typ) }
	post := []string{http.MethodPost}
	ops := []Operation{{Name: "validate", Level: "system", Definition: opValidateDefinition, Methods: post, Handle: handle}}
	for _, typ := range append([]string{"Bundle"}, servedTypes...) {
		ops = append(ops, Operation{Name: "validate", Level: "type", ResourceType: typ, Definition: opValidateDefinition, Methods: post, Handle: handle})
	}
	return ops
}

func (h *Handler) validate(c *gin.Context, typ string) {
	body, e := h.readBody(c)
	if e != nil {
		h.fail(c, e)
		return
	}
	profile, in := profileAndResource(c, body)
	if len(strings.TrimSpace(string(in))) == 0 {
		h.fail(c, errorf(http.StatusBadRequest, "required", "send the resource to validate as the body"))
		return
	}
	var issues []conformance.Issue
	if profile == "" {
		issues = conformance.Check(in)
	} else {
		checker, err := conformance.NewChecker(conformance.Options{Profiles: []string{profile}})
		if err != nil {
			h.fail(c, errorf(http.StatusBadRequest, "not-supported", "profile is not a shipped MHP profile"))
			return
		}
		issues = checker.Check(in)
	}
	if typ != "" {
		if rt := resourceTypeOf(in); rt != "" && rt != typ {
			issues = append(issues, conformance.Issue{Severity: conformance.SeverityError, Code: conformance.CodeStructure,
				Location: rt, Message: "the resource is not a " + typ})
		}
	}
	h.write(c, http.StatusOK, mustJSON(validationOutcome(issues)))
}

// validationOutcome renders checker issues: the rule and message as
// details, the location as expression (FHIRPath-like), and diagnostics,
// which may quote the input, only for whoever sent it.
func validationOutcome(issues []conformance.Issue) Outcome {
	oo := Outcome{ResourceType: "OperationOutcome", Issue: []Issue{}}
	for _, is := range issues {
		text := is.Message
		if is.Rule != "" {
			text = is.Rule + ": " + text
		}
		i := Issue{Severity: string(is.Severity), Code: is.Code, Details: &Concept{Text: text}, Diagnostics: is.Diagnostics}
		if is.Location != "" {
			i.Expression = []string{is.Location}
		}
		oo.Issue = append(oo.Issue, i)
	}
	if len(oo.Issue) == 0 {
		oo.Issue = append(oo.Issue, Issue{Severity: "information", Code: "informational",
			Details: &Concept{Text: "the resource conforms to the Migrant Health Profile"}})
	}
	return oo
}

// resourceTypeOf reads resourceType from a JSON resource, or "".
func resourceTypeOf(b []byte) string {
	var r struct {
		ResourceType string `json:"resourceType"`
	}
	if json.Unmarshal(b, &r) != nil {
		return ""
	}
	return r.ResourceType
}
