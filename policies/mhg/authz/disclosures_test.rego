package mhg.authz_test

import data.mhg.authz

disclosures(requester) := {
	"phase": "query",
	"requester": requester,
	"action": {"interaction": "operation", "resource_type": "Patient", "operation": "disclosures"},
	"consent": [],
}

test_auditors_draw_up_the_disclosure_report if {
	d := authz.decision with input as disclosures(console_user("auditor"))
	d.allow
	d.reasons == ["access.gateway-local"]
}

test_the_disclosure_report_is_an_audit_record if {
	authz.data_class == "audit" with input as disclosures(console_user("auditor"))
}

test_the_disclosure_report_needs_an_audit_scope if {
	d := authz.decision with input as disclosures(with_scopes(console_user("auditor"), ["system/Patient.rs"]))
	not d.allow
	"scope.insufficient" in d.reasons
	authz.decision.allow with input as disclosures(with_scopes(console_user("auditor"), ["system/AuditEvent.r"]))
}

test_administrators_do_not_draw_up_disclosure_reports if {
	d := authz.decision with input as disclosures(with_purpose(console_user("admin"), "HSYSADMIN"))
	not d.allow
	d.reasons == ["disclosure-report.auditors-only"]
}

test_clinicians_and_lawyers_do_not_draw_up_disclosure_reports if {
	every role in {"clinician", "legal"} {
		d := authz.decision with input as disclosures(console_user(role))
		not d.allow
		"disclosure-report.auditors-only" in d.reasons
	}
}
