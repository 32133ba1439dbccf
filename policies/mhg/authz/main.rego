# The entry point of every decision: data.mhg.authz.decision.
#
# Rules in the other files of this package add to three sets:
#   basis   why the request may go ahead (domestic access, an agreement, ...);
#   deny    why it may not (a stable rule id each);
#   notes   facts worth recording when it is allowed (break-the-glass).
# A request is allowed when some basis holds and no deny rule fires.
# Everything else is denied: default deny.
package mhg.authz

# The purpose of use the requester gave ("" when none).
purpose := object.get(input.requester, "purpose_of_use", "")

# Evaluation time, once per decision.
now := time.now_ns()

default allow := false

allow if {
	count(deny) == 0
	count(basis) > 0
}

decision := {
	"allow": allow,
	"reasons": reasons,
	"obligations": released_obligations,
	"agreements": released_agreements,
}

reasons := sort(basis | notes) if {
	allow
} else := sort(deny) if {
	count(deny) > 0
} else := ["default.no-basis"]

released_obligations := [o | some o in obligations] if {
	allow
} else := []

released_agreements := sort(permitting_agreements) if {
	allow
} else := []

# The phase must be one of the two the gateway knows.
deny contains "input.phase-unknown" if {
	not input.phase in {"query", "release"}
}

# The release phase decides about one resource: it must be described.
deny contains "input.resource-missing" if {
	input.phase == "release"
	not input.resource
}

# No purpose of use, no data.
deny contains "purpose.missing" if {
	purpose == ""
}

# The gateway only reads: any other interaction is refused.
deny contains "action.interaction-not-supported" if {
	not input.action.interaction in {
		"read", "vread", "search-type", "search-system",
		"history-instance", "history-type", "operation",
	}
}
