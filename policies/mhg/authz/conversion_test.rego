package mhg.authz_test

import data.mhg.authz

conversion(requester) := {
	"phase": "query",
	"requester": requester,
	"action": {"interaction": "operation", "resource_type": "", "operation": "to-mhp"},
	"consent": [],
}

test_clinicians_may_convert_their_records if {
	d := authz.decision with input as conversion(clinician("DE")) with time.now_ns as mid_2025
	d.allow
	d.reasons == ["conversion.requesters-own-records"]
}

test_conversion_is_for_care_purposes if {
	d := authz.decision with input as conversion(with_purpose(clinician("DE"), "HRESCH")) with time.now_ns as mid_2025
	not d.allow
	"purpose.not-allowed-for-class" in d.reasons
}

test_no_conversion_for_legal_proceedings if {
	d := authz.decision with input as conversion(with_purpose(clinician("DE"), "HLEGAL")) with time.now_ns as mid_2025
	not d.allow
	"firewall.query.purpose-forbidden" in d.reasons
	"purpose.not-allowed-for-class" in d.reasons
}

test_auditors_convert_nothing if {
	auditor := with_purpose(with_role(clinician("DE"), "auditor"), "HCOMPL")
	d := authz.decision with input as conversion(auditor) with time.now_ns as mid_2025
	not d.allow
	"role.auditor.audit-records-only" in d.reasons
	"role.not-allowed-for-class" in d.reasons
}

test_conversion_only_inside_the_agreements if {
	d := authz.decision with input as conversion(clinician("US")) with time.now_ns as mid_2025
	not d.allow
	d.reasons == ["conversion.country-not-in-network"]
}

# Germany's only agreement here has ended.
expired_index := {
	"pairs": {"DE": {"NL": {"TREAT": ["de-nl-ended"]}}, "NL": {"DE": {"TREAT": ["de-nl-ended"]}}},
	"agreements": {"de-nl-ended": {"valid_from_ns": 0, "valid_until_ns": 1}},
}

test_conversion_needs_an_agreement_in_force if {
	d := authz.decision with input as conversion(clinician("DE"))
		with data.mhg.index as expired_index
		with time.now_ns as mid_2025
	not d.allow
	d.reasons == ["conversion.country-not-in-network"]
}

test_conversion_is_not_a_source_query if {
	authz.data_class == "conversion" with input as conversion(clinician("DE"))
	not "access.source-required" in authz.deny with input as conversion(clinician("DE")) with time.now_ns as mid_2025
}
