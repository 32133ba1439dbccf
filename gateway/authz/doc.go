// Package authz is the policy decision point: an embedded OPA engine that
// loads the Rego policies (a directory in OPA bundle layout, the policies
// built into the binary, or bundles polled from a bundle server), validates
// and indexes the data-sharing agreements, compiles each revision once,
// runs its Rego tests before switching to it, and keeps the last good
// revision when a reload fails. Decide answers one question (phase query:
// may this source be contacted; phase release: may this resource go, and
// with which obligations), logs it in OPA's decision-log shape and counts
// it in its own metrics; errors and undefined results deny, with the
// engine's reason (engine.error, engine.undefined, engine.no-policy), which
// callers pass on unchanged. A decision is reused (memo.go) only for an
// input identical to one decided under the same revision, until the next
// agreement or consent validity boundary and for a minute at most.
//
// The policy input holds no protected attribute by construction: Input has
// none, FactsOf reads only a resource's type, security labels, category
// and class, ProvisionsOf reads a Consent's provisions, and every policy is
// type-checked against the closed input schema (policies/schema/input.json),
// so a rule that reads anything else does not load. Apply carries out the
// redact and label obligations of a decision on a resource; notify
// obligations are the caller's (they need the audit record). Check,
// Test/RunTests, Explain and Format are the legal team's tools
// (`mhg policy check|test|explain|fmt`); Prepare, TestFS, CheckFS and
// DecisionFile serve the console's policy workbench, which decides drafts
// and replays the decision log against them.
//
// See README.md for the layout, the decision flow and how to test a change.
package authz
