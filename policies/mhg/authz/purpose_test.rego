package mhg.authz_test

import data.mhg.authz

test_purpose_must_suit_the_class if {
	d := authz.decision with input as query(with_purpose(clinician("DE"), "HRESCH"), "Patient", "DE")
	not d.allow
	"purpose.not-allowed-for-class" in d.reasons
}

test_unknown_role_denied if {
	d := authz.decision with input as query(with_role(clinician("DE"), "janitor"), "Patient", "DE")
	not d.allow
	d.reasons == ["role.not-allowed-for-class"]
}

test_auditors_see_audit_records if {
	auditor := with_scopes(with_purpose(with_role(clinician("DE"), "auditor"), "HCOMPL"), ["system/AuditEvent.rs"])
	d := authz.decision with input as local_query(auditor, "AuditEvent")
	d.allow
	d.reasons == ["access.gateway-local"]
}

test_auditors_see_no_clinical_data if {
	auditor := with_purpose(with_role(clinician("DE"), "auditor"), "HCOMPL")
	denied := authz.deny with input as release(auditor, resource("Condition"), "DE", [])
	"role.auditor.audit-records-only" in denied
	"role.not-allowed-for-class" in denied
}

test_audit_records_only_for_auditors if {
	clinician_hcompl := with_purpose(clinician("DE"), "HCOMPL")
	denied := authz.deny with input as local_query(clinician_hcompl, "AuditEvent")
	"role.audit-records.auditors-only" in denied
}

test_researchers_get_aggregates if {
	researcher := with_purpose(with_role(clinician("DE"), "researcher"), "HRESCH")
	authz.allow with input as local_query(researcher, "MeasureReport")
	d := authz.decision with input as release(researcher, resource("Condition"), "DE", [])
	not d.allow
	"role.researcher.aggregates-only" in d.reasons
}

test_data_classes if {
	authz.data_class == "C" with input as release(clinician("DE"), resource("Condition"), "DE", [])
	authz.data_class == "S" with input as release(clinician("DE"), migration_context, "DE", [])
	authz.data_class == "audit" with input as local_query(clinician("DE"), "AuditEvent")
	authz.data_class == "aggregate" with input as local_query(clinician("DE"), "MeasureReport")
}

# Clinical data needs a source: the gateway holds none itself.
test_clinical_data_needs_a_source if {
	"access.source-required" in authz.deny with input as local_query(clinician("DE"), "Condition")
}
