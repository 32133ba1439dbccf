// Package conformance holds the Migrant Health Profile as FHIR artifacts
// (StructureDefinitions, CodeSystems, ValueSets, the CapabilityStatement
// parts), the sample national data under examples/, and the profile checker
// that validates a resource against the MHP profile it claims.
package conformance
