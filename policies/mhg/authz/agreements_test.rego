package mhg.authz_test

import data.mhg.authz

test_cross_border_under_bilateral_and_multilateral if {
	d := authz.decision with input as query(clinician("DE"), "Patient", "NL")
	d.allow
	d.reasons == ["agreement.cross-border.permitted"]
	d.agreements == ["de-nl-2024", "de-nl-ua-2025"]
}

test_cross_border_under_multilateral_only if {
	d := authz.decision with input as release(clinician("DE"), resource("Condition"), "UA", [])
	d.allow
	d.agreements == ["de-nl-ua-2025"]
}

test_resource_type_outside_the_bilateral if {
	d := authz.decision with input as release(clinician("DE"), resource("CarePlan"), "NL", [])
	d.allow
	d.agreements == ["de-nl-ua-2025"]
}

test_us_is_domestic_only if {
	d := authz.decision with input as query(clinician("DE"), "Patient", "US")
	not d.allow
	d.reasons == ["agreement.cross-border.no-agreement"]
	"agreement.cross-border.no-agreement" in authz.deny with input as query(clinician("US"), "Patient", "DE")
	authz.allow with input as query(clinician("US"), "Patient", "US")
}

test_purpose_not_covered if {
	public_health := with_role(with_purpose(clinician("DE"), "PUBHLTH"), "public-health")
	d := authz.decision with input as query(public_health, "Condition", "NL")
	d.reasons == ["agreement.cross-border.purpose-not-covered"]
}

test_expired_agreement if {
	public_health := with_role(with_purpose(clinician("DE"), "PUBHLTH"), "public-health")
	d := authz.decision with input as query(public_health, "Immunization", "UA")
	d.reasons == ["agreement.cross-border.not-in-force"]
}

test_agreement_not_yet_in_force if {
	req := query(clinician("DE"), "Patient", "UA")
	d := authz.decision with input as req with time.now_ns as time.parse_rfc3339_ns("2024-06-01T00:00:00Z")
	d.reasons == ["agreement.cross-border.not-in-force"]
	authz.allow with input as req with time.now_ns as mid_2025
}

test_valid_until_includes_the_last_day if {
	req := query(clinician("DE"), "Patient", "UA")
	authz.allow with input as req with time.now_ns as time.parse_rfc3339_ns("2035-12-31T23:59:59Z")
	not authz.allow with input as req with time.now_ns as time.parse_rfc3339_ns("2036-01-01T00:00:00Z")
}

public_health_nl := with_role(with_purpose(clinician("NL"), "PUBHLTH"), "public-health")

test_explicit_consent_required if {
	d := authz.decision with input as release(public_health_nl, resource("Condition"), "UA", [])
	d.reasons == ["agreement.explicit-consent-missing"]
}

test_explicit_consent_given if {
	consent := [provision("permit", {"actor_countries": ["NL"], "purposes": ["PUBHLTH"]})]
	d := authz.decision with input as release(public_health_nl, resource("Condition"), "UA", consent)
	d.allow
	d.agreements == ["nl-ua-pubhlth-2025"]
}

# A permit for everyone is consent, but not explicit consent to a
# destination.
test_explicit_consent_names_the_destination if {
	consent := [provision("permit", {})]
	d := authz.decision with input as release(public_health_nl, resource("Condition"), "UA", consent)
	d.reasons == ["agreement.explicit-consent-missing"]
	by_org := [provision("permit", {"actor_orgs": ["org-nl-hospital"]})]
	authz.allow with input as release(public_health_nl, resource("Condition"), "UA", by_org)
}

test_agreement_resource_type_and_class if {
	consent := [provision("permit", {"actor_countries": ["NL"]})]
	denied := authz.deny with input as release(public_health_nl, resource("MedicationRequest"), "UA", consent)
	denied == {"agreement.resource-type-not-covered"}
	statistics := authz.deny with input as release(public_health_nl, resource("MeasureReport"), "UA", consent)
	"agreement.data-class-not-covered" in statistics
}

test_index_shape if {
	data.mhg.index.pairs.DE.NL.TREAT == ["de-nl-2024", "de-nl-ua-2025"]
	data.mhg.index.pairs.NL.DE.COC == ["de-nl-2024", "de-nl-ua-2025"]
	data.mhg.index.pairs.UA.DE.ETREAT == ["de-nl-ua-2025"]
	not data.mhg.index.pairs.US
	data.mhg.index.agreements["de-nl-2024"].resource_types.Condition
}
