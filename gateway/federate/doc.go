// Package federate answers a FHIR request from the national sources: it asks
// the policy which sources may be contacted, fans out to them in parallel
// under one deadline, maps what they return into the Migrant Health Profile
// (through the cache), asks the policy again for every resource before it is
// released, applies the policy's obligations, and reports failing sources as
// warnings rather than failing the request.
//
// It knows nothing of HTTP: fhirapi turns its results into Bundles and its
// errors into OperationOutcomes. The interfaces it needs from sources,
// mappings, policy and cache are declared here.
package federate
