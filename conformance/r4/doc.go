// Package r4 holds the one FHIR R4 JSON codec the project uses: a validating
// parser and a marshaller from google/fhir/go's jsonformat, configured once and
// shared, plus small helpers to reach the resource inside a ContainedResource.
// Normalize (run by Parse) rewrites the forms of primitive extensions that R4
// JSON allows and jsonformat does not read (null placeholders in "_x" and
// value arrays) into equivalent ones it reads.
//
// It knows FHIR R4 and nothing about national profiles, policies or the
// gateway; every other package that turns JSON into protos or back goes
// through it, so validation rules and time zones are the same everywhere.
package r4
