# Building blocks for the tests of package mhg.authz: requesters, resources
# and inputs. Each test changes only what it is about.
package mhg.authz_test

clinician(country) := {
	"client_id": concat("-", ["ehr", lower(country)]),
	"org": concat("-", ["org", lower(country), "hospital"]),
	"country": country,
	"role": "clinician",
	"purpose_of_use": "TREAT",
	"scopes": ["system/*.rs"],
	"break_glass": false,
}

with_purpose(requester, purpose) := object.union(requester, {"purpose_of_use": purpose})

with_role(requester, role) := object.union(requester, {"role": role})

with_scopes(requester, scopes) := object.union(requester, {"scopes": scopes})

break_glass(requester) := object.union(requester, {"purpose_of_use": "ETREAT", "break_glass": true})

source(country) := {"id": concat("-", [lower(country), "sample"]), "country": country}

resource(type) := {"type": type, "security": [], "category": [], "class": "C"}

labelled(type, code) := object.union(resource(type), {"security": [{
	"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
	"code": code,
}]})

migration_context := {
	"type": "Observation",
	"security": [{"system": "https://fhir.migrant-health.org/mhp/CodeSystem/mhp-sensitivity", "code": "MIGSTAT"}],
	"category": [],
	"class": "S",
}

query(requester, type, country) := {
	"phase": "query",
	"requester": requester,
	"action": {"interaction": "read", "resource_type": type},
	"source": source(country),
	"consent": [],
}

release(requester, res, country, consent) := {
	"phase": "release",
	"requester": requester,
	"action": {"interaction": "read", "resource_type": res.type},
	"source": source(country),
	"resource": res,
	"consent": consent,
}

# A request that touches no source (audit records, statistics).
local_query(requester, type) := {
	"phase": "query",
	"requester": requester,
	"action": {"interaction": "search-type", "resource_type": type},
	"consent": [],
}

provision(type, changes) := object.union(
	{
		"consent_id": "consent-1",
		"type": type,
		"level": 0,
		"actor_countries": [],
		"actor_orgs": [],
		"purposes": [],
		"classes": [],
		"security_labels": [],
	},
	changes,
)

# An instant as the gateway gives it: nanoseconds since 1970.
instant(s) := time.parse_rfc3339_ns(s)

# 2025-06-01T00:00:00Z, inside the validity of every demo agreement in force.
mid_2025 := instant("2025-06-01T00:00:00Z")
