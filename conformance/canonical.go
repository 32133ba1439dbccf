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
