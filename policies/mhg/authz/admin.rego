# Administration of the gateway itself: purging what the cache holds from a
# source, forgetting what it holds about one patient after a consent change,
# explaining a decision. These operations touch no national source and
# release no patient data; they are for administrators only.
package mhg.authz

admin_operations := {"purge-cache", "forget-patient", "explain-policy"}

# A gateway operation that names no resource type and is an administration
# operation.
admin_operation if {
	input.action.interaction == "operation"
	object.get(input.action, "resource_type", "") == ""
	input.action.operation in admin_operations
}

# Administration is for administrators, whatever else the class rules say.
deny contains "role.administration.admins-only" if {
	input.action.interaction == "operation"
	admin_operation
	input.requester.role != "admin"
}
