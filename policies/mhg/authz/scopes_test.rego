package mhg.authz_test

import data.mhg.authz

scoped_query(scopes, interaction, type) := object.union(
	query(with_scopes(clinician("DE"), scopes), type, "DE"),
	{"action": {"interaction": interaction, "resource_type": type}},
)

test_scopes_cover if {
	cases := [
		{"name": "v2 type read", "scopes": ["system/Patient.rs"], "interaction": "read", "type": "Patient"},
		{"name": "v2 type search", "scopes": ["system/Patient.s"], "interaction": "search-type", "type": "Patient"},
		{"name": "v2 wildcard", "scopes": ["system/*.cruds"], "interaction": "vread", "type": "Condition"},
		{"name": "v1 read covers search", "scopes": ["system/Observation.read"], "interaction": "search-type", "type": "Observation"},
		{"name": "v1 star", "scopes": ["system/*.*"], "interaction": "read", "type": "Patient"},
		{"name": "operation needs read", "scopes": ["system/Patient.r"], "interaction": "operation", "type": "Patient"},
		{"name": "system search needs star", "scopes": ["system/*.s"], "interaction": "search-system", "type": ""},
		{"name": "one of many", "scopes": ["openid", "system/Condition.r", "system/Patient.rs"], "interaction": "read", "type": "Patient"},
	]
	every c in cases {
		not "scope.insufficient" in authz.deny with input as scoped_query(c.scopes, c.interaction, c.type)
	}
}

test_scopes_insufficient if {
	cases := [
		{"name": "none", "scopes": [], "interaction": "read", "type": "Patient"},
		{"name": "other type", "scopes": ["system/Condition.rs"], "interaction": "read", "type": "Patient"},
		{"name": "read is not search", "scopes": ["system/Patient.r"], "interaction": "search-type", "type": "Patient"},
		{"name": "v1 write", "scopes": ["system/*.write"], "interaction": "read", "type": "Patient"},
		{"name": "user scope", "scopes": ["user/Patient.rs"], "interaction": "read", "type": "Patient"},
		{"name": "patient scope", "scopes": ["patient/*.rs"], "interaction": "read", "type": "Patient"},
		{"name": "query-restricted", "scopes": ["system/Observation.rs?category=laboratory"], "interaction": "read", "type": "Observation"},
		{"name": "letters out of order", "scopes": ["system/Patient.sr"], "interaction": "read", "type": "Patient"},
		{"name": "no permission", "scopes": ["system/Patient"], "interaction": "read", "type": "Patient"},
		{"name": "empty permission", "scopes": ["system/Patient."], "interaction": "read", "type": "Patient"},
		{"name": "system search with a type scope", "scopes": ["system/Patient.s"], "interaction": "search-system", "type": ""},
	]
	every c in cases {
		"scope.insufficient" in authz.deny with input as scoped_query(c.scopes, c.interaction, c.type)
	}
}

# What is released must be covered too: $summary on Patient releases
# Conditions, which system/Patient.rs does not cover.
test_release_checks_the_released_type if {
	requester := with_scopes(clinician("DE"), ["system/Patient.rs"])
	"scope.insufficient" in authz.deny with input as release(requester, resource("Condition"), "DE", [])
	not "scope.insufficient" in authz.deny with input as release(requester, resource("Patient"), "DE", [])
}
