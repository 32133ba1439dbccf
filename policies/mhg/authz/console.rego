# The console in the browser: the legal team's policy workbench and the
# auditors' desk. Reading the audit records from the console is the same
# decision as GET /fhir/AuditEvent; the workbench operations below touch no
# source and no patient data, and are for the legal team only.
package mhg.authz

# policy-workbench: read the agreements and rules, edit drafts, run their
# tests, replay recorded decisions against a draft and explain decisions.
# policy-publish: turn a draft into a change for review (never a live edit).
workbench_operations := {"policy-workbench", "policy-publish"}

workbench_operation if {
	input.action.interaction == "operation"
	object.get(input.action, "resource_type", "") == ""
	input.action.operation in workbench_operations
}

# The policies are the legal team's: nobody else edits, tests or publishes
# them from the console, whatever the class table says.
deny contains "role.policy-workbench.legal-only" if {
	input.action.interaction == "operation"
	workbench_operation
	input.requester.role != "legal"
}
