// Package mappings turns resources written to a national FHIR profile into
// the Migrant Health Profile (MHP). Each national profile has a folder of
// declarative specs (mapping.yaml) and FHIR ConceptMaps that people who know
// FHIR but not Go can read and change; common/ holds the shared rules and
// the identifier registry. Load compiles them once into a plan per profile
// and refuses a broken spec with its file and line.
//
// Mapping adds international codes beside national ones, normalises
// countries to ISO 3166-1 alpha-2, keeps partial dates partial, fills
// required elements with data-absent-reason, and enforces the firewall:
// class S data (status-revealing identifiers, residence and charging
// status, refugee screening answers) moves out of Patient into a restricted
// mhp-migration-context Observation; race, ethnicity and (by default)
// religion are withheld. Every call returns a loss report that never quotes
// patient data. Provenance names the national original of each output, and
// Convert does the same offline over files (mhg map).
//
// The package works on R4 JSON; it does not fetch, cache or authorize.
// README.md documents the spec format for the people who edit it.
package mappings
