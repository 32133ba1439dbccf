// Package conformance holds the Migrant Health Profile (MHP) as FHIR R4
// artifacts (StructureDefinitions, extensions, CodeSystems, ValueSets and
// OperationDefinitions, embedded from profiles/), the ISO 3166-1 country
// table the mapping engine reuses, and the profile checker: a Checker
// compiles the StructureDefinitions' differentials once into a plan and
// validates a resource, after google/fhir's R4 validation, against the MHP
// profiles it claims in meta.profile, returning OperationOutcome-shaped
// issues with FHIRPath-like locations and no patient values.
//
// It does not map national data (that is package mappings) and does not
// interpret FHIRPath: the invariants the profiles declare are implemented
// in Go, one function per key. Sample national data lives under examples/.
package conformance
