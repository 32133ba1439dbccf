# Domestic access, and cross-border access under the data-sharing
# agreements of policies/data/agreements.json.
#
# The engine indexes the agreements when it loads them, so that a decision
# reads the few agreements between two countries for one purpose instead of
# scanning all of them:
#   data.mhg.index.pairs[requester country][source country][purpose] = [agreement ids]
#   data.mhg.index.agreements[id] = the agreement, with sets as objects and
#                                   its validity in nanoseconds.
# The index is imported, not assigned to a rule: a rule holding it would
# copy every agreement into each decision.
package mhg.authz

import data.mhg.index

domestic if {
	input.source.country == input.requester.country
}

cross_border if {
	input.source.country != input.requester.country
}

# Requests that touch no source: only the gateway's own audit records,
# statistics, administration and policy workbench.
local_classes := {"audit", "aggregate", "admin", "policy"}

basis contains "access.domestic" if {
	domestic
}

basis contains "access.gateway-local" if {
	not input.source
	data_class in local_classes
}

deny contains "access.source-required" if {
	not input.source
	not data_class in sourceless_classes
}

# Agreements between the two countries, whatever the purpose.
pair_agreements := index.pairs[input.requester.country][input.source.country] if {
	cross_border
}

# Agreements between the two countries that name the purpose.
named_agreements contains id if {
	some id in pair_agreements[purpose]
}

in_force(agreement) if {
	agreement.valid_from_ns <= now
	now < agreement.valid_until_ns
}

in_force_agreements contains id if {
	some id in named_agreements
	in_force(index.agreements[id])
}

deny contains "agreement.cross-border.no-agreement" if {
	cross_border
	not pair_agreements
}

deny contains "agreement.cross-border.purpose-not-covered" if {
	pair_agreements
	count(named_agreements) == 0
}

deny contains "agreement.cross-border.not-in-force" if {
	count(named_agreements) > 0
	count(in_force_agreements) == 0
}

# Why an agreement in force does not cover this request.
agreement_failures[id] contains "agreement.resource-type-not-covered" if {
	input.phase == "release"
	some id in in_force_agreements
	types := index.agreements[id].resource_types
	not types[target_type]
	not types["*"]
}

agreement_failures[id] contains "agreement.data-class-not-covered" if {
	input.phase == "release"
	some id in in_force_agreements
	not index.agreements[id].data_classes[data_class]
}

agreement_failures[id] contains "agreement.explicit-consent-missing" if {
	input.phase == "release"
	some id in in_force_agreements
	index.agreements[id].explicit_consent_required
	not consent_names_requester
}

agreement_failures[id] contains "agreement.break-glass-not-allowed" if {
	input.requester.break_glass == true
	break_glass
	some id in in_force_agreements
	not index.agreements[id].break_glass
}

permitting_agreements contains id if {
	some id in in_force_agreements
	not agreement_failures[id]
}

basis contains "agreement.cross-border.permitted" if {
	count(permitting_agreements) > 0
}

# When no agreement in force covers the request, each one says why.
deny contains reason if {
	count(in_force_agreements) > 0
	count(permitting_agreements) == 0
	some id in in_force_agreements
	some reason in agreement_failures[id]
}
