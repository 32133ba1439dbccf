# Break-the-glass: emergency treatment (purpose ETREAT) with the token's
# break_glass flag. It may override the patient's deny where the law of the
# source's country (domestic access) or the agreement (cross-border access)
# allows it, and it is always recorded and notified.
package mhg.authz

import data.mhg.index

break_glass if {
	input.requester.break_glass == true
	purpose == "ETREAT"
}

# The flag means nothing without the emergency purpose: a client that sets
# it for anything else is refused rather than ignored.
deny contains "break-glass.requires-etreat" if {
	input.requester.break_glass == true
	purpose != "ETREAT"
}

break_glass_overrides_consent if {
	break_glass
	domestic
	data.data.jurisdictions[input.source.country].break_glass_overrides_consent == true
}

break_glass_overrides_consent if {
	break_glass
	some id in permitting_agreements
	index.agreements[id].break_glass == true
}

# Break-the-glass is recorded with every decision that allows it. (This
# rule and those below read the flag first, so that the engine skips them,
# unevaluated, for every request without it.)
notes contains "break-glass.invoked" if {
	input.requester.break_glass == true
	break_glass
}

notes contains "break-glass.consent-overridden" if {
	input.requester.break_glass == true
	break_glass_overrides_consent
	consent_denies
}

# Whoever invokes break-the-glass answers for it: the patient and the
# privacy officer of the source's country are told.
obligations contains {"kind": "notify", "target": "patient", "rule": "break-glass.notify"} if {
	input.requester.break_glass == true
	break_glass
}

obligations contains {"kind": "notify", "target": "privacy-officer", "rule": "break-glass.notify"} if {
	input.requester.break_glass == true
	break_glass
}
