package mhg.authz_test

import data.mhg.authz

test_patient_deny_wins_over_agreement if {
	consent := [provision("deny", {})]
	d := authz.decision with input as release(clinician("DE"), resource("Condition"), "NL", consent)
	not d.allow
	d.reasons == ["consent.patient-deny"]
	d.obligations == []
}

test_patient_deny_applies_domestically if {
	consent := [provision("deny", {})]
	"consent.patient-deny" in authz.deny with input as release(clinician("DE"), resource("Condition"), "DE", consent)
}

test_deny_for_another_country_does_not_apply if {
	consent := [provision("deny", {"actor_countries": ["NL"]})]
	authz.allow with input as release(clinician("DE"), resource("Condition"), "DE", consent)
	"consent.patient-deny" in authz.deny with input as release(clinician("NL"), resource("Condition"), "DE", consent)
}

test_deny_for_an_organisation if {
	consent := [provision("deny", {"actor_orgs": ["org-de-hospital"]})]
	"consent.patient-deny" in authz.deny with input as release(clinician("DE"), resource("Condition"), "DE", consent)
}

test_deny_for_a_purpose if {
	consent := [provision("deny", {"purposes": ["COC"]})]
	authz.allow with input as release(clinician("DE"), resource("Condition"), "DE", consent)
	"consent.patient-deny" in authz.deny with input as release(with_purpose(clinician("DE"), "COC"), resource("Condition"), "DE", consent)
}

test_deny_for_a_class if {
	consent := [provision("deny", {"classes": ["Observation"]})]
	authz.allow with input as release(clinician("DE"), resource("Condition"), "NL", consent)
	"consent.patient-deny" in authz.deny with input as release(clinician("DE"), resource("Observation"), "NL", consent)
}

# A deny about labelled data waits for the release phase, then removes
# only what carries the label.
test_deny_for_a_label if {
	consent := [provision("deny", {"security_labels": ["HIV"]})]
	req := object.union(query(clinician("DE"), "Condition", "NL"), {"consent": consent})
	authz.allow with input as req
	authz.allow with input as release(clinician("DE"), resource("Condition"), "NL", consent)
	"consent.patient-deny" in authz.deny with input as release(clinician("DE"), labelled("Condition", "HIV"), "NL", consent)
}

# Base deny with a nested permit: the opt-in pattern of the MHP consent.
test_nested_permit_is_an_exception if {
	consent := [
		provision("deny", {}),
		provision("permit", {"level": 1, "actor_countries": ["DE"], "purposes": ["TREAT"]}),
	]
	authz.allow with input as release(clinician("DE"), resource("Condition"), "NL", consent)
	"consent.patient-deny" in authz.deny with input as release(clinician("UA"), resource("Condition"), "NL", consent)
}

test_deny_wins_at_the_same_level if {
	consent := [provision("permit", {}), provision("deny", {})]
	"consent.patient-deny" in authz.deny with input as release(clinician("DE"), resource("Condition"), "DE", consent)
}

# The gateway reads the period into start_ns and end_ns (the Go tests of
# the engine cover partial dates); a bound it could not read has none.
test_deny_periods if {
	cases := [
		{"start": "2030", "start_ns": instant("2030-01-01T00:00:00Z"), "applies": false},
		{"start": "2030-02-01T10:00:00+01:00", "start_ns": instant("2030-02-01T09:00:00Z"), "applies": false},
		{"end": "2024", "end_ns": instant("2025-01-01T00:00:00Z"), "applies": false},
		{"end": "2025-05-31", "end_ns": mid_2025, "applies": false},
		{"end": "2025", "end_ns": instant("2026-01-01T00:00:00Z"), "applies": true},
		{"end": "2025-06-01", "end_ns": instant("2025-06-02T00:00:00Z"), "applies": true},
		{"start": "2025-06-01T00:00:00Z", "start_ns": mid_2025, "applies": true},
		{
			"start": "2025-01-01", "start_ns": instant("2025-01-01T00:00:00Z"),
			"end": "2025-12-31", "end_ns": instant("2026-01-01T00:00:00Z"),
			"applies": true,
		},
		{"start": "not a date", "applies": true},
		{"end": "31/12/2024", "applies": true},
	]
	every c in cases {
		consent := [provision("deny", object.remove(c, ["applies"]))]
		req := release(clinician("DE"), resource("Condition"), "DE", consent)
		denied := authz.deny with input as req with time.now_ns as mid_2025
		applied := "consent.patient-deny" in denied
		applied == c.applies
	}
}

# A permit counts only when its period can be read and holds now.
test_permit_periods if {
	cases := [
		{"end": "2025-12-31", "end_ns": instant("2026-01-01T00:00:00Z"), "explicit": true},
		{"start": "2025-06-01T00:00:00Z", "start_ns": mid_2025, "explicit": true},
		{"start": "2026", "start_ns": instant("2026-01-01T00:00:00Z"), "explicit": false},
		{"end": "2025-05", "end_ns": mid_2025, "explicit": false},
		{"end": "soon", "explicit": false},
		{"start": "once", "explicit": false},
	]
	every c in cases {
		period := object.remove(c, ["explicit"])
		consent := [provision("permit", object.union(period, {"actor_countries": ["NL"]}))]
		req := release(public_health_nl, resource("Condition"), "UA", consent)
		authz.allow == c.explicit with input as req with time.now_ns as mid_2025
	}
}

test_invalid_provision_denies if {
	consent := [provision("maybe", {})]
	"consent.provision-invalid" in authz.deny with input as release(clinician("DE"), resource("Condition"), "DE", consent)
}

# The gateway always gives the level; a hand-written input without one
# means a main provision.
test_provision_without_level_is_a_main_provision if {
	consent := [object.remove(provision("deny", {}), ["level"])]
	"consent.patient-deny" in authz.deny with input as release(clinician("DE"), resource("Condition"), "DE", consent)
	nested := [
		object.remove(provision("deny", {}), ["level"]),
		provision("permit", {"level": 1, "actor_countries": ["DE"]}),
	]
	authz.allow with input as release(clinician("DE"), resource("Condition"), "DE", nested)
}
