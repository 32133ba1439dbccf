package mhg.authz_test

import data.mhg.authz

admin_op(requester, op) := {
	"phase": "query",
	"requester": requester,
	"action": {"interaction": "operation", "resource_type": "", "operation": op},
	"consent": [],
}

administrator := with_purpose(with_role(clinician("DE"), "admin"), "HSYSADMIN")

test_admins_may_administer if {
	every op in authz.admin_operations {
		d := authz.decision with input as admin_op(administrator, op)
		d.allow
		d.reasons == ["access.gateway-local"]
	}
}

test_administration_is_for_admins_only if {
	d := authz.decision with input as admin_op(with_purpose(clinician("DE"), "HSYSADMIN"), "purge-cache")
	not d.allow
	"role.administration.admins-only" in d.reasons
}

test_administration_needs_an_operations_purpose if {
	d := authz.decision with input as admin_op(with_purpose(administrator, "TREAT"), "purge-cache")
	not d.allow
	"purpose.not-allowed-for-class" in d.reasons
}

test_unknown_operations_are_not_administration if {
	authz.data_class == "C" with input as admin_op(administrator, "frobnicate")
	not authz.allow with input as admin_op(administrator, "frobnicate")
}

test_admins_see_no_clinical_data if {
	d := authz.decision with input as query(administrator, "Patient", "DE")
	not d.allow
}
