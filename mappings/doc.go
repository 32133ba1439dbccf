// Package mappings turns resources written to a national FHIR profile into
// the Migrant Health Profile (MHP). Each national profile has a folder of
// declarative specs and FHIR ConceptMaps that people who know FHIR but not
// Go can read and change; the engine compiles them once into a plan.
package mappings
