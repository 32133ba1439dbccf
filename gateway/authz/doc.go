// Package authz is the policy decision point: an embedded OPA engine that
// loads the Rego policies (a directory in OPA bundle layout, the policies
// built into the binary, or bundles polled from a bundle server), validates
// and indexes the data-sharing agreements, compiles each revision once,
// runs its Rego tests before switching to it, and keeps the last good
// revision when a reload fails. Decide answers one question (phase query:
// may this source be contacted; phase release: may this resource go, and
// with which obligations) and logs it in OPA's decision-log shape; errors
// and undefined results deny.
//
// The policy input holds no protected attribute by construction: Input has
// none, FactsOf reads only a resource's type, security labels, category
// and class, and every policy is type-checked against the closed input
// schema (policies/schema/input.json), so a rule that reads anything else
// does not load. Check, Test/RunTests and Explain are the legal team's
// tools (`mhg policy check|test|explain`).
//
// The package does not enforce obligations (redaction, labels, notices):
// the caller does, from Decision.Obligations.
package authz
