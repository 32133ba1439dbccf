package mhg.authz_test

import data.mhg.authz

console_op(requester, op) := {
	"phase": "query",
	"requester": requester,
	"action": {"interaction": "operation", "resource_type": "", "operation": op},
	"consent": [],
}

console_user(role) := {
	"client_id": "console-user",
	"org": "ministry-of-health",
	"country": "DE",
	"role": role,
	"purpose_of_use": "HCOMPL",
	"scopes": ["system/*.rs"],
	"break_glass": false,
}

test_the_legal_team_uses_the_workbench if {
	every op in authz.workbench_operations {
		d := authz.decision with input as console_op(console_user("legal"), op)
		d.allow
		d.reasons == ["access.gateway-local"]
	}
}

test_auditors_cannot_edit_policy if {
	every op in authz.workbench_operations {
		d := authz.decision with input as console_op(console_user("auditor"), op)
		not d.allow
		"role.policy-workbench.legal-only" in d.reasons
	}
}

test_clinicians_have_no_workbench if {
	d := authz.decision with input as console_op(with_purpose(clinician("DE"), "HCOMPL"), "policy-workbench")
	not d.allow
	"role.policy-workbench.legal-only" in d.reasons
}

test_the_workbench_needs_a_compliance_purpose if {
	d := authz.decision with input as console_op(with_purpose(console_user("legal"), "TREAT"), "policy-workbench")
	not d.allow
	"purpose.not-allowed-for-class" in d.reasons
}

test_the_legal_team_sees_no_patient_data if {
	d := authz.decision with input as query(console_user("legal"), "Patient", "DE")
	not d.allow
	"role.not-allowed-for-class" in d.reasons
}

test_the_legal_team_reads_no_audit_records if {
	d := authz.decision with input as local_query(console_user("legal"), "AuditEvent")
	not d.allow
	"role.audit-records.auditors-only" in d.reasons
}

test_other_operations_are_not_the_workbench if {
	authz.data_class == "C" with input as console_op(console_user("legal"), "policy-delete")
}
