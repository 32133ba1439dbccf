package mhg.authz_test

import data.mhg.authz

notify_obligations := {
	{"kind": "notify", "target": "patient", "rule": "break-glass.notify"},
	{"kind": "notify", "target": "privacy-officer", "rule": "break-glass.notify"},
}

test_break_glass_overrides_deny_domestically if {
	consent := [provision("deny", {})]
	d := authz.decision with input as release(break_glass(clinician("DE")), resource("Condition"), "DE", consent)
	d.allow
	d.reasons == ["access.domestic", "break-glass.consent-overridden", "break-glass.invoked"]
	every o in notify_obligations {
		o in d.obligations
	}
}

test_break_glass_under_the_multilateral_agreement if {
	consent := [provision("deny", {})]
	d := authz.decision with input as release(break_glass(clinician("DE")), resource("Condition"), "NL", consent)
	d.allow
	d.agreements == ["de-nl-ua-2025"]
	"break-glass.consent-overridden" in d.reasons
}

test_break_glass_is_notified_at_query_time if {
	d := authz.decision with input as query(break_glass(clinician("DE")), "Patient", "UA")
	d.allow
	d.reasons == ["agreement.cross-border.permitted", "break-glass.invoked"]
	{o | some o in d.obligations} == notify_obligations
}

test_emergency_without_the_flag_respects_deny if {
	consent := [provision("deny", {})]
	req := release(with_purpose(clinician("DE"), "ETREAT"), resource("Condition"), "DE", consent)
	"consent.patient-deny" in authz.deny with input as req
}

test_flag_without_emergency_purpose_denied if {
	requester := object.union(clinician("DE"), {"break_glass": true})
	"break-glass.requires-etreat" in authz.deny with input as query(requester, "Patient", "DE")
}

test_break_glass_where_the_law_does_not_allow_it if {
	consent := [provision("deny", {})]
	req := release(break_glass(clinician("DE")), resource("Condition"), "DE", consent)
	"consent.patient-deny" in authz.deny with input as req with data.data.jurisdictions.DE.break_glass_overrides_consent as false
}

agreements_without_break_glass[id] := object.union(a, {"break_glass": false}) if {
	some id, a in data.mhg.index.agreements
}

test_break_glass_where_the_agreement_does_not_allow_it if {
	req := query(break_glass(clinician("DE")), "Patient", "NL")
	d := authz.decision with input as req with data.mhg.index.agreements as agreements_without_break_glass
	not d.allow
	d.reasons == ["agreement.break-glass-not-allowed"]
}
