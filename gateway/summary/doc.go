// Package summary renders the patient summary ($summary): it takes one
// person's records as federate linked and the policy released them, one
// Link per national source, and returns the MHP document Bundle (an IPS
// document). It merges the sources' Patients into one (partial dates stay
// partial, disagreements are shown rather than picked), folds records of
// the same clinical fact, writes the narratives in the language asked for,
// a Provenance per national original and an OperationOutcome for what the
// reader must know (sources missing, conflicts, mapping losses).
//
// It does no I/O and takes no decision: no network, sources, cache or
// policy engine (a test lists its dependencies). Its behaviour is pinned by
// golden files, testdata/<case>/in.json (a summary.Input) rendered to
// want.json; `go test -update` rewrites them for review.
package summary
