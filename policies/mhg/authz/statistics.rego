# Aggregate statistics (Measure/{id}/$evaluate-measure): which measures and
# strata a requester may have counted from a source, and the disclosure
# terms of what is released.
#
# The terms come from the agreement that covers the two countries
# (data/agreements.json, "statistics"), or for a source in the requester's
# own country from data/statistics.json ("domestic"). The engine checks them
# when it loads the policies and indexes them with k and protected_k
# resolved and the grain's length in months:
#   data.mhg.index.agreements[id].statistics
#   data.mhg.index.statistics_domestic
# Roles and purposes are those of the "aggregate" data class
# (data/classes.json); the firewall's forbidden purposes hold here too.
#
# Every rule here first asks whether the request is for statistics
# (input.action.operation is "evaluate-measure"): the engine then skips
# them all, unevaluated, for any other request.
package mhg.authz

import data.mhg.index

# The gateway must say what is asked: the measure, strata and period.
deny contains "input.statistics-missing" if {
	input.action.operation == "evaluate-measure"
	not input.statistics
}

# Only the report leaves a statistics request, never a record.
deny contains "statistics.not-an-aggregate" if {
	input.action.operation == "evaluate-measure"
	input.phase == "release"
	target_type != "MeasureReport"
}

# The terms that could cover a query to a source: the domestic terms, or
# each agreement in force between the two countries for the purpose.
statistics_terms.domestic := index.statistics_domestic if {
	input.action.operation == "evaluate-measure"
	input.phase == "query"
	domestic
}

statistics_terms[id] := index.agreements[id].statistics if {
	input.action.operation == "evaluate-measure"
	input.phase == "query"
	some id in in_force_agreements
}

# Why one set of terms does not cover the request.
statistics_failures[id] contains "statistics.measure-not-covered" if {
	input.action.operation == "evaluate-measure"
	some id, terms in statistics_terms
	not terms.measures[input.statistics.measure]
}

# Migration status and length of stay come from the firewalled migration
# context: only as an aggregate dimension, and only where the terms name
# them.
statistics_failures[id] contains "statistics.migration-status-stratum-not-allowed" if {
	input.action.operation == "evaluate-measure"
	some id, terms in statistics_terms
	some stratum in input.statistics.strata
	stratum.class == "S"
	not terms.strata[stratum.code]
}

statistics_failures[id] contains "statistics.stratum-not-allowed" if {
	input.action.operation == "evaluate-measure"
	some id, terms in statistics_terms
	some stratum in input.statistics.strata
	stratum.class != "S"
	not terms.strata[stratum.code]
}

# A period shorter than the grain would let two reports be subtracted
# from each other.
statistics_failures[id] contains "statistics.period-shorter-than-grain" if {
	input.action.operation == "evaluate-measure"
	some id, terms in statistics_terms
	input.statistics.period_months < terms.grain_months
}

# Within one country: the domestic terms must exist and cover the request.
deny contains "statistics.terms-missing" if {
	input.action.operation == "evaluate-measure"
	input.phase == "query"
	domestic
	not index.statistics_domestic
}

deny contains reason if {
	input.action.operation == "evaluate-measure"
	some reason in statistics_failures.domestic
}

# Across borders: an agreement without statistics terms does not cover a
# statistics request, and one whose terms do not cover it says why (the
# reasons are reported with the other agreement failures).
agreement_failures[id] contains "statistics.terms-missing" if {
	input.action.operation == "evaluate-measure"
	input.phase == "query"
	some id in in_force_agreements
	not index.agreements[id].statistics
}

agreement_failures[id] contains reason if {
	input.action.operation == "evaluate-measure"
	some id in in_force_agreements
	some reason in statistics_failures[id]
}

# The disclosure terms of each set of terms that covers the request: the
# gateway applies the strictest k and rounding and the coarsest grain of
# all the sources it asks.
statistics_obligation(id, terms) := {
	"kind": "statistics",
	"k": statistics_k(terms),
	"rounding": terms.rounding,
	"grain": terms.grain,
	"rule": concat(".", ["statistics.terms", id]),
}

statistics_k(terms) := terms.protected_k if {
	input.statistics.protected
} else := terms.k

obligations contains statistics_obligation("domestic", terms) if {
	input.action.operation == "evaluate-measure"
	terms := statistics_terms.domestic
	not statistics_failures.domestic
}

obligations contains statistics_obligation(id, statistics_terms[id]) if {
	input.action.operation == "evaluate-measure"
	some id in permitting_agreements
	statistics_terms[id]
}
