package fhirapi

import "github.com/google/uuid"

// outcomeEntry is the searchset entry of an OperationOutcome the gateway
// wrote about the answer (search.mode outcome). Such an outcome has no
// address of its own, so it gets a fresh UUID as its id and
// urn:uuid:<id> as its fullUrl, as the gateway's Provenances do: every
// entry of every Bundle the gateway answers with has a fullUrl a strict
// validator accepts.
func outcomeEntry(oo *Outcome) bundleEntry {
	if oo.ID == "" {
		oo.ID = uuid.NewString()
	}
	return bundleEntry{FullURL: "urn:uuid:" + oo.ID, Resource: mustJSON(oo), Search: &entrySearch{Mode: "outcome"}}
}
