# The patient's consent, as FHIR R4 Consent provisions normalised by the
# gateway (input.consent). A provision applies to a request when each of
# its restrictions (actor country or organisation, purpose, class, security
# label, period) matches; an empty restriction matches everything. The
# deepest applicable provision decides (nested provisions are exceptions to
# their parent); at equal depth deny wins. The patient's deny wins over any
# agreement, except break-the-glass where the law or the agreement allows it.
package mhg.authz

provision_types := {"permit", "deny"}

matches_any([], _)

matches_any(list, value) if value in list

# Labels restrict a provision to resources that carry one of them; in the
# query phase there is no resource yet, so such a provision waits for the
# release phase.
labels_match(provision) if provision.security_labels == []

labels_match(provision) if {
	input.phase == "release"
	some label in input.resource.security
	label.code in provision.security_labels
}

applies_to_requester(provision) if {
	matches_any(provision.actor_countries, input.requester.country)
	matches_any(provision.actor_orgs, input.requester.org)
	matches_any(provision.purposes, purpose)
}

# The gateway reads each period bound (start, end: FHIR dates, which may be
# partial, or date-times) into nanoseconds: start_ns is the first instant
# of the start, end_ns the first instant after the end, so a partial end
# date includes its whole year, month or day. A bound it cannot read has
# no _ns. A date that cannot be read proves nothing: a deny with a broken
# period still applies, a permit does not.
outside_period(provision) if now < provision.start_ns

outside_period(provision) if now >= provision.end_ns

# Provably inside its period: each bound is absent, or read and holding.
inside_period(provision) if {
	started(provision)
	not_ended(provision)
}

started(provision) if not provision.start

started(provision) if provision.start_ns <= now

not_ended(provision) if not provision.end

not_ended(provision) if now < provision.end_ns

applies_to_data(provision) if {
	matches_any(provision.classes, target_type)
	labels_match(provision)
}

# The denies that apply to this request: its requester, purpose, data and
# time.
applicable_denies contains i if {
	some i, provision in input.consent
	provision.type == "deny"
	applies_to_requester(provision)
	applies_to_data(provision)
	not outside_period(provision)
}

# The permits about this requester, purpose and time, found once per
# decision; those that apply to the data narrow them down.
requester_permits contains i if {
	some i, provision in input.consent
	provision.type == "permit"
	applies_to_requester(provision)
	inside_period(provision)
}

applicable_permits contains i if {
	some i in requester_permits
	applies_to_data(input.consent[i])
}

applicable := applicable_denies | applicable_permits

# A provision without a level is a main provision (the gateway always gives
# one; a hand-written input may not).
deciding_level := max({object.get(input.consent[i], "level", 0) | some i in applicable})

consent_denies if {
	some i in applicable_denies
	object.get(input.consent[i], "level", 0) == deciding_level
}

# The patient named the requester's country or organisation in a permit
# that applies: explicit consent to this destination.
consent_names_requester if {
	not consent_denies
	some i in applicable_permits
	provision := input.consent[i]
	explicit_actor(provision)
}

explicit_actor(provision) if input.requester.country in provision.actor_countries

explicit_actor(provision) if input.requester.org in provision.actor_orgs

# The patient's deny wins over any agreement, unless break-the-glass may
# override it. (This rule and the next are looked at only when the consent
# has a provision at all, input.consent[0]: the engine skips them,
# unevaluated, for every other request.)
deny contains "consent.patient-deny" if {
	input.consent[0]
	consent_denies
	not break_glass_overrides_consent
}

# A provision the gateway could not normalise denies, to be safe.
deny contains "consent.provision-invalid" if {
	input.consent[0]
	some provision_type in {object.get(provision, "type", "") | some provision in input.consent}
	not provision_type in provision_types
}
