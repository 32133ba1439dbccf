# Demographic search (Patient/$match). Finding a person by name and birth
# date is more sensitive than finding them by an identifier that crosses
# borders: only the roles and purposes in data/matching.json may ask; across
# a border an agreement in force must allow demographic search for the
# purpose; a source is asked only when the request carries every trait its
# country requires (the agreement's patient_match.traits for the source's
# country, data/matching.json for a domestic source); and the gateway sends
# it only the traits it allows and releases no candidate below the lowest
# grade the agreement names. The policy sees which kinds of trait were given
# (input.match.traits), never their values. Every rule here first asks
# whether the request is a demographic search (input.action.operation is
# "match"): the engine then skips them all, unevaluated, for any other
# request.
package mhg.authz

import data.data.matching
import data.mhg.index

supplied_traits contains t if {
	some t in input.match.traits
}

deny contains "match.role-not-allowed" if {
	input.action.operation == "match"
	not input.requester.role in matching.roles
}

deny contains "match.purpose-not-allowed" if {
	input.action.operation == "match"
	not purpose in matching.purposes
}

# Agreements in force for the purpose that allow demographic search.
match_agreements contains id if {
	input.action.operation == "match"
	some id in in_force_agreements
	index.agreements[id].patient_match.purposes[purpose]
}

deny contains "match.cross-border.not-covered" if {
	input.action.operation == "match"
	count(in_force_agreements) > 0
	count(match_agreements) == 0
}

# The rules an agreement sets for the sources of the source's country.
source_trait_rules(id) := index.agreements[id].patient_match.traits[input.source.country]

traits_met(rules) if {
	every t in rules.required {
		t in supplied_traits
	}
}

# Agreements under which this source may be asked with the traits given.
match_usable contains id if {
	some id in match_agreements
	traits_met(source_trait_rules(id))
}

deny contains "match.traits-insufficient" if {
	input.action.operation == "match"
	input.phase == "query"
	count(match_agreements) > 0
	count(match_usable) == 0
}

deny contains "match.traits-insufficient" if {
	input.action.operation == "match"
	input.phase == "query"
	domestic
	not traits_met(matching.domestic)
}

# Across a border the source is asked under the first usable agreement (by
# id): the traits it allows go out, and no candidate below its lowest grade
# comes back. The obligation repeats the kinds the source requires, for a
# search whose traits the gateway takes from a record rather than from the
# requester (linking records for a summary).
obligations contains {
	"kind": "match",
	"traits": sort({t | some t in rules.allowed; t in supplied_traits}),
	"required": sort(rules.required),
	"grade": index.agreements[id].patient_match.lowest_grade,
	"rule": concat(".", ["match.agreement", id]),
} if {
	input.action.operation == "match"
	input.phase == "query"
	id := sort(match_usable)[0]
	rules := source_trait_rules(id)
}

# A domestic source receives every trait given.
obligations contains {
	"kind": "match",
	"traits": sort(supplied_traits),
	"required": sort(matching.domestic.required),
	"grade": matching.domestic.lowest_grade,
	"rule": "match.domestic",
} if {
	input.action.operation == "match"
	input.phase == "query"
	domestic
}
