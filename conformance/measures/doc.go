// Package measures ships the gateway's statistical measures as FHIR R4
// Measure resources (with the ValueSets they name and the catalogue of
// strata) and compiles their population criteria once, at load, into
// programs evaluated on the MHP resources of one patient.
//
// A measure is data: a public-health team adds Measure-<id>.json (and its
// ValueSet-*.json) to this folder and a test case under testdata/cases,
// without Go changes. Criteria are written in a documented subset of
// FHIRPath (README.md); a criterion that does not compile stops Load with
// the file and line of the expression.
//
// The package evaluates one patient at a time and holds no population: the
// evaluator in gateway/stats streams patients through it and counts.
package measures
