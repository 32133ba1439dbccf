# The accounting of disclosures for one patient (Patient/{id}/$disclosures
# and the console's disclosure report): every time the patient's data was
# asked for, who received it, for which purpose and under which agreement.
# It is read from the audit records, so it is an audit record itself, and
# only an auditor may draw it up.
package mhg.authz

disclosure_report if {
	input.action.interaction == "operation"
	input.action.resource_type == "Patient"
	input.action.operation == "disclosures"
}

deny contains "disclosure-report.auditors-only" if {
	input.action.operation == "disclosures"
	disclosure_report
	input.requester.role != "auditor"
}
