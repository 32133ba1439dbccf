# SMART on FHIR scopes must cover the interaction. The gateway is called
# system to system, so only system/ scopes count: v2 (system/Type.rs) and
# v1 (system/Type.read). Scopes restricted by a query (system/Type.rs?x=y)
# grant nothing here: the gateway cannot yet prove the restriction holds.
package mhg.authz

search_interactions := {"search-type", "search-system", "history-instance", "history-type"}

# The permission the interaction needs: s for searches, r for the rest.
needed_permission := "s" if {
	input.action.interaction in search_interactions
} else := "r"

# The resource type the scope must name; system-wide searches need *.
scope_type := target_type if {
	target_type != ""
} else := "*"

# What one scope grants: the resource type and the permission letters.
scope_grant(scope) := {"type": parts[0], "permissions": permission_letters(parts[1])} if {
	startswith(scope, "system/")
	not contains(scope, "?")
	parts := split(trim_prefix(scope, "system/"), ".")
	count(parts) == 2
}

# SMART v1 permissions.
permission_letters("read") := {"r", "s"}

permission_letters("write") := {"c", "u", "d"}

permission_letters("*") := {"c", "r", "u", "d", "s"}

# SMART v2 permissions: letters of cruds, in that order.
permission_letters(p) := {letter | some letter in split(p, "")} if {
	p != ""
	regex.match(`^c?r?u?d?s?$`, p)
}

scopes_cover if {
	some scope in input.requester.scopes
	grant := scope_grant(scope)
	grant.type in {"*", scope_type}
	needed_permission in grant.permissions
}

deny contains "scope.insufficient" if {
	not scopes_cover
}
