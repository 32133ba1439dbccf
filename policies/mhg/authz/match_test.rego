package mhg.authz_test

import data.mhg.authz

# A demographic search of a source in country, with the trait kinds given.
match_query(requester, country, traits) := object.union(query(requester, "Patient", country), {
	"action": {"interaction": "operation", "resource_type": "Patient", "operation": "match"},
	"match": {"traits": traits},
})

all_traits := ["birthDate", "family", "gender", "given"]

test_match_domestic_allowed_with_every_trait_given if {
	d := authz.decision with input as match_query(clinician("DE"), "DE", ["birthDate", "family", "gender", "given", "identifier"])
	d.allow
	d.obligations == [{
		"kind": "match", "rule": "match.domestic", "grade": "possible",
		"traits": ["birthDate", "family", "gender", "given", "identifier"],
		"required": ["birthDate", "family", "given"],
	}]
}

test_match_domestic_needs_name_and_birth_date if {
	d := authz.decision with input as match_query(clinician("DE"), "DE", ["family", "given"])
	not d.allow
	d.reasons == ["match.traits-insufficient"]
}

test_match_cross_border_sends_only_allowed_traits if {
	d := authz.decision with input as match_query(clinician("DE"), "NL", ["birthDate", "citizenship", "family", "gender", "given", "identifier"])
	d.allow
	some o in d.obligations
	o.kind == "match"
	o.rule == "match.agreement.de-nl-2024"
	o.grade == "probable"
	o.traits == ["birthDate", "family", "gender", "given"]
	o.required == ["birthDate", "family", "given"]
}

test_match_ukraine_requires_gender_kind if {
	without := authz.decision with input as match_query(clinician("DE"), "UA", ["birthDate", "family", "given"])
	not without.allow
	without.reasons == ["match.traits-insufficient"]
	with_kind := authz.decision with input as match_query(clinician("DE"), "UA", all_traits)
	with_kind.allow
	some o in with_kind.obligations
	o.rule == "match.agreement.de-nl-ua-2025"
}

test_match_refused_roles if {
	d := authz.decision with input as match_query(with_role(clinician("DE"), "nurse"), "DE", all_traits)
	not d.allow
	"match.role-not-allowed" in d.reasons
}

test_match_refused_purposes if {
	public_health := with_purpose(clinician("DE"), "PUBHLTH")
	d := authz.decision with input as match_query(public_health, "DE", all_traits)
	not d.allow
	"match.purpose-not-allowed" in d.reasons
}

test_match_refused_where_the_agreement_allows_no_demographic_search if {
	# COC is covered by de-nl-ua-2025, whose demographic search is for
	# TREAT and ETREAT only; the bilateral de-nl-2024 does not include
	# Ukraine.
	coc := with_purpose(clinician("DE"), "COC")
	d := authz.decision with input as match_query(coc, "UA", all_traits) with time.now_ns as mid_2025
	not d.allow
	d.reasons == ["match.cross-border.not-covered"]
}

test_match_identifier_search_unaffected if {
	# The same requester searching by identifier needs no traits.
	d := authz.decision with input as query(clinician("DE"), "Patient", "UA")
	d.allow
	not "match.traits-insufficient" in d.reasons
}

test_match_release_of_candidates_follows_the_usual_rules if {
	req := object.union(release(clinician("DE"), resource("Patient"), "NL", []), {"action": {
		"interaction": "operation", "resource_type": "Patient", "operation": "match",
	}})
	d := authz.decision with input as req
	d.allow
	every o in d.obligations {
		o.kind != "match"
	}
}
