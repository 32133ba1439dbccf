package fhirapi

import (
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/migrant-health/mhg/gateway/search"
)

// capabilityStatement is the R4 CapabilityStatement, generated from what
// the handler actually registers.
type capabilityStatement struct {
	ResourceType   string      `json:"resourceType"`
	ID             string      `json:"id"`
	Status         string      `json:"status"`
	Date           string      `json:"date"`
	Publisher      string      `json:"publisher"`
	Kind           string      `json:"kind"`
	Software       capSoftware `json:"software"`
	Implementation capImpl     `json:"implementation"`
	FHIRVersion    string      `json:"fhirVersion"`
	Format         []string    `json:"format"`
	Rest           []capRest   `json:"rest"`
	Instantiates   []string    `json:"instantiates,omitempty"`
	Description    string      `json:"description,omitempty"`
	Name           string      `json:"name"`
	Title          string      `json:"title"`
}

type capSoftware struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

type capImpl struct {
	Description string `json:"description"`
	URL         string `json:"url,omitempty"`
}

type capRest struct {
	Mode      string         `json:"mode"`
	Security  *capSecurity   `json:"security,omitempty"`
	Resource  []capResource  `json:"resource"`
	Operation []capOperation `json:"operation,omitempty"`
}

type capSecurity struct {
	Service     []Concept `json:"service"`
	Description string    `json:"description"`
}

type capResource struct {
	Type              string           `json:"type"`
	Profile           string           `json:"profile,omitempty"`
	Interaction       []capInteraction `json:"interaction"`
	SearchParam       []capSearchParam `json:"searchParam,omitempty"`
	Operation         []capOperation   `json:"operation,omitempty"`
	Documentation     string           `json:"documentation,omitempty"`
	ReadHistory       bool             `json:"readHistory"`
	UpdateCreate      bool             `json:"updateCreate"`
	ConditionalCreate bool             `json:"conditionalCreate"`
}

type capInteraction struct {
	Code string `json:"code"`
}

type capSearchParam struct {
	Name          string `json:"name"`
	Definition    string `json:"definition,omitempty"`
	Type          string `json:"type"`
	Documentation string `json:"documentation,omitempty"`
}

type capOperation struct {
	Name          string `json:"name"`
	Definition    string `json:"definition"`
	Documentation string `json:"documentation,omitempty"`
}

// profileOf names the MHP profile each served type conforms to.
var profileOf = map[string]string{
	"Patient":             "https://fhir.migrant-health.org/mhp/StructureDefinition/mhp-patient",
	"Condition":           "https://fhir.migrant-health.org/mhp/StructureDefinition/mhp-condition",
	"AllergyIntolerance":  "https://fhir.migrant-health.org/mhp/StructureDefinition/mhp-allergyintolerance",
	"Immunization":        "https://fhir.migrant-health.org/mhp/StructureDefinition/mhp-immunization",
	"MedicationStatement": "https://fhir.migrant-health.org/mhp/StructureDefinition/mhp-medicationstatement",
	"MedicationRequest":   "https://fhir.migrant-health.org/mhp/StructureDefinition/mhp-medicationrequest",
	"Observation":         "https://fhir.migrant-health.org/mhp/StructureDefinition/mhp-observation-lab",
	"Procedure":           "https://fhir.migrant-health.org/mhp/StructureDefinition/mhp-procedure",
}

var paramDocs = map[string]capSearchParam{
	"identifier": {Name: "identifier", Type: "token", Definition: "http://hl7.org/fhir/SearchParameter/Patient-identifier",
		Documentation: "system|value, |value or value; asked of every source the policy permits"},
	"_id":     {Name: "_id", Type: "token", Definition: "http://hl7.org/fhir/SearchParameter/Resource-id"},
	"patient": {Name: "patient", Type: "reference", Documentation: "gateway id of the patient; required"},
	"subject": {Name: "subject", Type: "reference", Documentation: "Patient/<gateway id>; same as patient"},
}

func (h *Handler) capabilityStatement() capabilityStatement {
	rest := capRest{
		Mode: "server",
		Security: &capSecurity{
			Service: []Concept{{Coding: []Coding{{System: "http://terminology.hl7.org/CodeSystem/restful-security-service", Code: "SMART-on-FHIR"}}}},
			Description: "SMART Backend Services bearer JWT (RS256/ES256) with SMART v2 system scopes and an IHE IUA purpose_of_use claim; " +
				"every release is decided by policy and audited",
		},
	}
	for _, typ := range servedTypes {
		r := capResource{Type: typ, Profile: profileOf[typ], Interaction: []capInteraction{{Code: "read"}, {Code: "search-type"}}}
		params := typeParams[typ]
		if params == nil {
			params = clinicalParams
		}
		for _, p := range params {
			r.SearchParam = append(r.SearchParam, paramDocs[p])
		}
		// The clinical parameters are package search's definitions, the
		// same ones the search handler evaluates.
		for _, p := range search.Params(typ) {
			r.SearchParam = append(r.SearchParam, capSearchParam{Name: p.Name, Type: string(p.Kind), Definition: p.Definition, Documentation: p.Documentation})
		}
		if keys := search.SortKeys(typ); len(keys) > 0 {
			r.Documentation = "Criteria are evaluated on the released MHP resources (national and added international codings), before paging. " +
				"_sort accepts " + strings.Join(keys, ", ") + " (prefix - for descending). " +
				"Unknown parameters are ignored and named in an OperationOutcome entry, or refused with Prefer: handling=strict."
		}
		for _, op := range h.sortedOps() {
			// An operation served at type and instance level ($summary)
			// is one operation with one definition.
			listed := capOperation{Name: op.Name, Definition: op.Definition}
			if op.ResourceType == typ && !slices.Contains(r.Operation, listed) {
				r.Operation = append(r.Operation, listed)
			}
		}
		rest.Resource = append(rest.Resource, r)
	}
	if h.opts.Federation.Measures() != nil {
		r := capResource{Type: "Measure", Interaction: []capInteraction{{Code: "read"}, {Code: "search-type"}}}
		for _, op := range h.sortedOps() {
			listed := capOperation{Name: op.Name, Definition: op.Definition}
			if op.ResourceType == "Measure" && !slices.Contains(r.Operation, listed) {
				r.Operation = append(r.Operation, listed)
			}
		}
		rest.Resource = append(rest.Resource, r)
	}
	for _, op := range h.sortedOps() {
		if op.Level == "system" {
			listed := capOperation{Name: op.Name, Definition: op.Definition}
			if op.Name == "to-mhp" && h.opts.Mapper != nil {
				// The national profiles are the mapping engine's, one
				// folder each under mappings/: listed from it, never by hand.
				listed.Documentation = "profile: one of " + strings.Join(h.opts.Mapper.Profiles(), ", ")
			}
			rest.Operation = append(rest.Operation, listed)
		}
	}
	return capabilityStatement{
		ResourceType: "CapabilityStatement", ID: "mhg", Status: "active", Date: now(), Publisher: "Migrant Health Gateway",
		Kind: "instance", Name: "MigrantHealthGateway", Title: "Migrant Health Gateway",
		Software:       capSoftware{Name: "mhg", Version: h.opts.Version},
		Implementation: capImpl{Description: "Migrant Health Gateway: national EHRs of origin, transit and destination as one MHP (IPS-based) FHIR R4 endpoint", URL: h.opts.BaseURL},
		FHIRVersion:    "4.0.1", Format: []string{"json", "application/fhir+json"},
		Rest: []capRest{rest},
	}
}

func (h *Handler) sortedOps() []Operation {
	ops := make([]Operation, 0, len(h.ops))
	for _, op := range h.ops {
		ops = append(ops, op)
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].key() < ops[j].key() })
	return ops
}

func (h *Handler) capabilities(c *gin.Context) {
	h.write(c, http.StatusOK, mustJSON(h.capabilityStatement()))
}
