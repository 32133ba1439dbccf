# SMART on FHIR scopes must cover the interaction. The gateway is called
# system to system, so only system/ scopes count: v2 (system/Type.rs) and
# v1 (system/Type.read). Scopes restricted by a query (system/Type.rs?x=y)
# grant nothing here: the gateway cannot yet prove the restriction holds.
package mhg.authz

# The permission the interaction needs: s for searches, r for the rest.
needed_permission := "s" if {
	input.action.interaction in {"search-type", "search-system", "history-instance", "history-type"}
} else := "r"

# The resource type the scope must name; system-wide searches need *.
scope_type := target_type if {
	target_type != ""
} else := "*"

# A scope is system/<type>.<permissions>.
scopes_cover if {
	some scope in input.requester.scopes
	startswith(scope, "system/")
	not contains(scope, "?")
	[type, permissions] := split(trim_prefix(scope, "system/"), ".")
	type in {"*", scope_type}
	grants(permissions, needed_permission)
}

# SMART v1 permissions: read (r and s), write (c, u and d), * (all).
grants("read", letter) if letter in {"r", "s"}

grants("*", _)

# SMART v2 permissions: letters of cruds, in that order.
grants(permissions, letter) if {
	regex.match(`^c?r?u?d?s?$`, permissions)
	contains(permissions, letter)
}

deny contains "scope.insufficient" if {
	not scopes_cover
}
