# Converting national records into the Migrant Health Profile ($to-mhp):
# an EHR sends records it already holds and gets them back mapped. No
# national source is asked and nothing is stored, but it is still the
# processing of health data by the gateway: it is for the care roles and
# purposes of the "conversion" data class (data/classes.json), and for
# organisations of a country that takes part in at least one data-sharing
# agreement in force.
package mhg.authz

import data.mhg.index

conversion_operation if {
	input.action.interaction == "operation"
	object.get(input.action, "resource_type", "") == ""
	input.action.operation == "to-mhp"
}

# Classes of requests that ask no national source: the gateway's own
# records, and conversions.
sourceless_classes := local_classes | {"conversion"}

# The requester converts records it holds itself.
basis contains "conversion.requesters-own-records" if {
	input.action.operation == "to-mhp"
	conversion_operation
}

# The requester's country is a party to some agreement in force.
country_in_network if {
	some by_purpose in index.pairs[input.requester.country]
	some ids in by_purpose
	some id in ids
	in_force(index.agreements[id])
}

deny contains "conversion.country-not-in-network" if {
	input.action.operation == "to-mhp"
	conversion_operation
	not country_in_network
}
