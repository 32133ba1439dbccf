package search

import (
	"slices"
	"sort"
)

// Kind is a search parameter's FHIR type.
type Kind string

// The parameter kinds the gateway evaluates.
const (
	Token Kind = "token"
	Date  Kind = "date"
)

// Param defines one search parameter on one resource type.
type Param struct {
	// Name is the parameter as a client writes it (code, onset-date).
	Name string
	// Kind is its FHIR search parameter type.
	Kind Kind
	// Definition is the canonical URL of the SearchParameter it implements.
	Definition string
	// Paths are the element paths it reads, FHIR JSON names separated by
	// '.', choice elements without their type suffix (onset, effective).
	Paths []string
	// Documentation says what a client should know about it.
	Documentation string
	// codeOnly marks a token on a code element (status, intent): its
	// system is implied, so it has no :text.
	codeOnly bool
}

const core = "http://hl7.org/fhir/SearchParameter/"

// lastUpdated is defined on every type.
var lastUpdated = Param{Name: "_lastUpdated", Kind: Date, Definition: core + "Resource-lastUpdated",
	Paths: []string{"meta.lastUpdated"}, Documentation: "when the national source last changed the resource, as it says"}

func tok(name, def string, paths ...string) Param {
	return Param{Name: name, Kind: Token, Definition: core + def, Paths: paths,
		Documentation: "code, system|code, |code or system|; :text searches the text and displays, :not negates; " +
			"matches the international coding the gateway added as well as the national one"}
}

func date(name, def string, paths ...string) Param {
	return Param{Name: name, Kind: Date, Definition: core + def, Paths: paths,
		Documentation: "prefixes eq ne gt lt ge le sa eb ap; partial dates (2019, 2019-05) compare as the range they name"}
}

// status and code elements with a fixed value set: the system is implied.
func code(name, def string, paths ...string) Param {
	p := tok(name, def, paths...)
	p.Documentation = "the code (its system is implied); :not negates"
	p.codeOnly = true
	return p
}

// params lists, per type, what the gateway evaluates (International
// Patient Access's floor, with US Core's names where IPA has none).
var params = map[string][]Param{
	"Condition": {
		tok("category", "Condition-category", "category"),
		tok("code", "clinical-code", "code"),
		tok("clinical-status", "Condition-clinical-status", "clinicalStatus"),
		tok("verification-status", "Condition-verification-status", "verificationStatus"),
		date("onset-date", "Condition-onset-date", "onset"),
		date("recorded-date", "Condition-recorded-date", "recordedDate"),
	},
	"Observation": {
		tok("category", "Observation-category", "category"),
		tok("code", "clinical-code", "code"),
		code("status", "Observation-status", "status"),
		date("date", "clinical-date", "effective"),
	},
	"Immunization": {
		tok("vaccine-code", "Immunization-vaccine-code", "vaccineCode"),
		code("status", "Immunization-status", "status"),
		date("date", "clinical-date", "occurrence"),
	},
	"AllergyIntolerance": {
		code("category", "AllergyIntolerance-category", "category"),
		tok("code", "clinical-code", "code"),
		tok("clinical-status", "AllergyIntolerance-clinical-status", "clinicalStatus"),
		tok("verification-status", "AllergyIntolerance-verification-status", "verificationStatus"),
		code("criticality", "AllergyIntolerance-criticality", "criticality"),
		date("date", "clinical-date", "recordedDate"),
	},
	"MedicationStatement": {
		tok("category", "MedicationStatement-category", "category"),
		tok("code", "medications-code", "medication"),
		code("status", "medications-status", "status"),
		date("effective", "MedicationStatement-effective", "effective"),
	},
	"MedicationRequest": {
		tok("category", "MedicationRequest-category", "category"),
		tok("code", "medications-code", "medication"),
		code("status", "medications-status", "status"),
		code("intent", "MedicationRequest-intent", "intent"),
		date("authoredon", "MedicationRequest-authoredon", "authoredOn"),
	},
	"Procedure": {
		tok("category", "Procedure-category", "category"),
		tok("code", "clinical-code", "code"),
		code("status", "Procedure-status", "status"),
		date("date", "clinical-date", "performed"),
	},
	"DiagnosticReport": {
		tok("category", "DiagnosticReport-category", "category"),
		tok("code", "clinical-code", "code"),
		code("status", "DiagnosticReport-status", "status"),
		date("date", "clinical-date", "effective"),
		date("issued", "DiagnosticReport-issued", "issued"),
	},
	"DocumentReference": {
		tok("category", "DocumentReference-category", "category"),
		tok("type", "clinical-type", "type"),
		code("status", "DocumentReference-status", "status"),
		date("date", "DocumentReference-date", "date"),
		date("period", "DocumentReference-period", "context.period"),
	},
}

// Types lists the resource types that have search definitions, sorted.
func Types() []string {
	ts := make([]string, 0, len(params))
	for t := range params {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	return ts
}

// Params lists the search parameters of resourceType, _lastUpdated last;
// nil when the type has no search definitions.
func Params(resourceType string) []Param {
	ps, ok := params[resourceType]
	if !ok {
		return nil
	}
	return append(slices.Clone(ps), lastUpdated)
}

// Lookup finds a parameter of resourceType by name.
func Lookup(resourceType, name string) (Param, bool) {
	for _, p := range Params(resourceType) {
		if p.Name == name {
			return p, true
		}
	}
	return Param{}, false
}

// SortKeys lists the parameters _sort accepts on resourceType: its date
// parameters.
func SortKeys(resourceType string) []string {
	var keys []string
	for _, p := range Params(resourceType) {
		if p.Kind == Date {
			keys = append(keys, p.Name)
		}
	}
	return keys
}
