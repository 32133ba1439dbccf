package mhg.authz_test

import data.mhg.authz

test_domestic_query_allowed if {
	d := authz.decision with input as query(clinician("DE"), "Patient", "DE")
	d.allow
	d.reasons == ["access.domestic"]
	d.obligations == []
	d.agreements == []
}

test_domestic_release_allowed if {
	d := authz.decision with input as release(clinician("DE"), resource("Condition"), "DE", [])
	d.allow
	d.reasons == ["access.domestic"]
}

test_unknown_phase_denied if {
	d := authz.decision with input as object.union(query(clinician("DE"), "Patient", "DE"), {"phase": "delete"})
	not d.allow
	"input.phase-unknown" in d.reasons
}

test_release_needs_a_resource if {
	req := object.remove(release(clinician("DE"), resource("Condition"), "DE", []), ["resource"])
	"input.resource-missing" in authz.deny with input as req
}

test_no_purpose_denied if {
	d := authz.decision with input as query(with_purpose(clinician("DE"), ""), "Patient", "DE")
	not d.allow
	"purpose.missing" in d.reasons
	d.obligations == []
}

test_write_interactions_denied if {
	req := object.union(query(clinician("DE"), "Patient", "DE"), {"action": {"interaction": "create", "resource_type": "Patient"}})
	"action.interaction-not-supported" in authz.deny with input as req
}

# A source without a country can be neither domestic nor under an
# agreement: default deny, with no other rule to blame.
test_default_deny_without_basis if {
	req := object.union(object.remove(query(clinician("DE"), "Patient", "DE"), ["source"]), {"source": {"id": "nowhere"}})
	d := authz.decision with input as req
	not d.allow
	d.reasons == ["default.no-basis"]
}
