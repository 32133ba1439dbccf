// Package federate answers a FHIR request from the national sources: it asks
// the policy which sources may be contacted, fans out to them in parallel
// under one deadline, maps what they return into the Migrant Health Profile
// (through the cache), asks the policy again for every resource before it is
// released, applies the policy's obligations, and reports failing sources as
// warnings rather than failing the request. Its Linker finds one person in
// several sources by identifiers that may cross borders and answers the
// patient-level operations over the linked records: $everything, and
// $summary, whose document the summary package renders. Records a source
// merged (Patient.link) are followed to the one it kept. EvaluateMeasure
// counts a statistical measure over every source the policy permits for
// it, under the strictest disclosure terms of those sources, and releases
// only the protected table (package stats evaluates, package disclosure
// protects).
//
// It knows nothing of HTTP: fhirapi turns its results into Bundles and its
// errors into OperationOutcomes. The interfaces it needs from sources,
// mappings, policy and cache are declared here. Work that fans out goes
// through one helper, inParallel: each goroutine writes only its own slot
// (a Result, an answer), and the slots are absorbed in order after all
// have returned.
package federate
