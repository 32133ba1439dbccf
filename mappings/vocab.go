package mappings

import (
	"encoding/json"
	"sync"

	"github.com/migrant-health/mhg/conformance"
)

// Code systems and extension URLs the engine writes itself. The MHP ones
// come from conformance so that the mapping and the profiles agree.
const (
	sysISO3166         = "urn:iso:std:iso:3166"
	sysConfidentiality = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
	sysActCode         = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
	sysObsCategory     = "http://terminology.hl7.org/CodeSystem/observation-category"
	sysAdminGender     = "http://terminology.hl7.org/CodeSystem/v3-AdministrativeGender"
	sysNullFlavor      = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
	sysLOINC           = "http://loinc.org"
	sysSNOMED          = "http://snomed.info/sct"
	sysLifecycle       = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle"
	sysProvAgentType   = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"

	extDataAbsent     = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
	extSCCoding       = "http://hl7.org/fhir/StructureDefinition/iso21090-SC-coding"
	extRecordedSex    = "http://hl7.org/fhir/StructureDefinition/individual-recordedSexOrGender"
	extGenderIdentity = "http://hl7.org/fhir/StructureDefinition/individual-genderIdentity"
	extInterpreter    = "http://hl7.org/fhir/StructureDefinition/patient-interpreterRequired"

	csContextItem       = conformance.Canonical + "/CodeSystem/mhp-context-item"
	extStatusIdentifier = conformance.Canonical + "/StructureDefinition/mhp-status-identifier"
)

// SourceURI is what meta.source of a mapped resource says: the gateway's
// name for the national source, never the national server's own URL.
func SourceURI(sourceID string) string {
	return conformance.Canonical + "/source/" + sourceID
}

// SourceIdentifierSystem is the identifier system under which a Provenance
// names a national original (the value is the gateway id of the original).
func SourceIdentifierSystem(sourceID string) string {
	return conformance.Canonical + "/sid/source/" + sourceID
}

// MappingURI names one version of one national mapping (Provenance.policy).
func MappingURI(profile, version string) string {
	return conformance.Canonical + "/mapping/" + profile + "/" + version
}

var (
	vocabOnce      sync.Once
	statusDisplays map[string]string
	countryNames   map[string]string
)

func loadVocab() {
	vocabOnce.Do(func() {
		statusDisplays = codeSystemDisplays(conformance.CSMigrationStatus)
		countryNames = map[string]string{}
		for _, c := range conformance.Countries() {
			countryNames[c.Alpha2] = c.Name
		}
	})
}

// codeSystemDisplays reads code -> display from a shipped MHP CodeSystem.
func codeSystemDisplays(url string) map[string]string {
	out := map[string]string{}
	a, ok := conformance.Artifact(url)
	if !ok {
		return out
	}
	var cs struct {
		Concept []struct {
			Code    string `json:"code"`
			Display string `json:"display"`
		} `json:"concept"`
	}
	if err := json.Unmarshal(a.JSON, &cs); err != nil {
		return out
	}
	for _, c := range cs.Concept {
		out[c.Code] = c.Display
	}
	return out
}

func migrationStatusDisplay() map[string]string {
	loadVocab()
	return statusDisplays
}

func coding(system, code, display string) object {
	c := object{"system": system, "code": code}
	if display != "" {
		c["display"] = display
	}
	return c
}

func concept(system, code, display string) object {
	return object{"coding": []any{coding(system, code, display)}}
}

func dataAbsent(reason string) object {
	return object{"url": extDataAbsent, "valueCode": reason}
}
