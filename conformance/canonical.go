package conformance

// Canonical is the one canonical base of every MHP artifact
// (StructureDefinitions, CodeSystems, ValueSets, OperationDefinitions).
const Canonical = "https://fhir.migrant-health.org/mhp"

// Profile canonical URLs.
const (
	ProfileBundle           = Canonical + "/StructureDefinition/mhp-bundle"
	ProfileComposition      = Canonical + "/StructureDefinition/mhp-composition"
	ProfilePatient          = Canonical + "/StructureDefinition/mhp-patient"
	ProfileCondition        = Canonical + "/StructureDefinition/mhp-condition"
	ProfileAllergy          = Canonical + "/StructureDefinition/mhp-allergyintolerance"
	ProfileMedStatement     = Canonical + "/StructureDefinition/mhp-medicationstatement"
	ProfileMedRequest       = Canonical + "/StructureDefinition/mhp-medicationrequest"
	ProfileImmunization     = Canonical + "/StructureDefinition/mhp-immunization"
	ProfileObservationLab   = Canonical + "/StructureDefinition/mhp-observation-lab"
	ProfileProcedure        = Canonical + "/StructureDefinition/mhp-procedure"
	ProfileMigrationContext = Canonical + "/StructureDefinition/mhp-migration-context"
	ProfileProvenance       = Canonical + "/StructureDefinition/mhp-provenance"
)

// Extension and code system URLs.
const (
	ExtArrival          = Canonical + "/StructureDefinition/mhp-arrival"
	ExtDateAccuracy     = Canonical + "/StructureDefinition/mhp-date-accuracy"
	CSMigrationStatus   = Canonical + "/CodeSystem/mhp-migration-status"
	CSReasonMigration   = Canonical + "/CodeSystem/mhp-reason-for-migration"
	CSSensitivity       = Canonical + "/CodeSystem/mhp-sensitivity"
	CSDateAccuracy      = Canonical + "/CodeSystem/mhp-date-accuracy"
	SIDGatewayPseudonym = Canonical + "/sid/mpi"
)

// Artifacts added with the profile package.
const (
	ProfileAuditEvent   = Canonical + "/StructureDefinition/mhp-auditevent"
	ExtStatusIdentifier = Canonical + "/StructureDefinition/mhp-status-identifier"
	CSContextItem       = Canonical + "/CodeSystem/mhp-context-item"

	VSMigrationStatus           = Canonical + "/ValueSet/mhp-migration-status"
	VSReasonMigration           = Canonical + "/ValueSet/mhp-reason-for-migration"
	VSSensitivity               = Canonical + "/ValueSet/mhp-sensitivity"
	VSDateAccuracy              = Canonical + "/ValueSet/mhp-date-accuracy"
	VSContextItem               = Canonical + "/ValueSet/mhp-context-item"
	VSCountry                   = Canonical + "/ValueSet/mhp-country"
	VSConfidentiality           = Canonical + "/ValueSet/mhp-confidentiality"
	VSConfidentialityRestricted = Canonical + "/ValueSet/mhp-confidentiality-restricted"

	OpSummary    = Canonical + "/OperationDefinition/summary"
	OpToMHP      = Canonical + "/OperationDefinition/to-mhp"
	OpEverything = Canonical + "/OperationDefinition/everything"
	// OpDisclosures is the accounting of disclosures for one patient.
	OpDisclosures = Canonical + "/OperationDefinition/disclosures"
	// OpEvaluateMeasure is Measure/$evaluate-measure with the gateway's
	// stratifier parameter and disclosure control.
	OpEvaluateMeasure = Canonical + "/OperationDefinition/mhp-evaluate-measure"

	// SystemISO3166 is the code system of ISO 3166 country codes.
	SystemISO3166 = "urn:iso:std:iso:3166"
	// CodeMIGSTAT is the mhp-sensitivity code for immigration-status data.
	CodeMIGSTAT = "MIGSTAT"
)

// AuditEvent artifacts (used by gateway/audit).
const (
	ExtAuditAgentOrganization = Canonical + "/StructureDefinition/mhp-audit-agent-organization"
	ExtAuditAgentCountry      = Canonical + "/StructureDefinition/mhp-audit-agent-country"
	CSRequesterRole           = Canonical + "/CodeSystem/mhp-requester-role"
)
