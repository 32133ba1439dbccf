# Data classes, and which purposes of use and roles each class allows.
# The allow-lists are data (policies/data/classes.json); the role
# invariants below hold whatever that file says.
package mhg.authz

# The resource type a decision is about: the released resource in the
# release phase, the type asked for in the query phase.
# The disclosure report reads audit records (disclosures.rego).
target_type := input.resource.type if {
	input.phase == "release"
} else := "AuditEvent" if {
	disclosure_report
} else := input.action.resource_type

# A resource is firewalled when the gateway classed it S or when it carries
# the MIGSTAT sensitivity label, from whatever code system.
firewalled if {
	input.phase == "release"
	input.resource.class == "S"
}

firewalled if {
	input.phase == "release"
	some label in input.resource.security
	label.code == "MIGSTAT"
}

# The data class: S for firewalled data, audit for audit records, aggregate
# for statistics (the Measures and their reports), admin for administration of the gateway (admin.rego),
# policy for the legal team's workbench (console.rego), conversion for
# $to-mhp (conversion.rego), C for every other (clinical, person-level)
# resource.
data_class := "S" if {
	firewalled
} else := class if {
	class := {"AuditEvent": "audit", "MeasureReport": "aggregate", "Measure": "aggregate"}[target_type]
} else := class if {
	input.action.interaction == "operation"
	class := operation_class
} else := "C"

# Operations of the gateway itself, which name no resource type.
operation_class := "admin" if {
	admin_operation
} else := "policy" if {
	workbench_operation
} else := "conversion" if {
	conversion_operation
}

class_rules := data.data.classes[data_class]

# The purpose must be on the allow-list of the data class.
deny contains "purpose.not-allowed-for-class" if {
	purpose != ""
	not purpose in class_rules.purposes
}

# The requester's role must be on the role list of the data class.
deny contains "role.not-allowed-for-class" if {
	not input.requester.role in class_rules.roles
}

# Auditors see audit records and nothing else.
deny contains "role.auditor.audit-records-only" if {
	input.requester.role == "auditor"
	data_class != "audit"
}

# Researchers get aggregates and nothing else.
deny contains "role.researcher.aggregates-only" if {
	input.requester.role == "researcher"
	data_class != "aggregate"
}

# Audit records go to auditors and administrators only.
deny contains "role.audit-records.auditors-only" if {
	data_class == "audit"
	not input.requester.role in {"auditor", "admin"}
}
