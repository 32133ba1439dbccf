package mhg.authz_test

import data.mhg.authz

migstat_consent(purpose) := [provision("permit", {
	"actor_countries": ["DE"],
	"purposes": [purpose],
	"security_labels": ["MIGSTAT"],
})]

test_no_lookup_for_forbidden_purposes if {
	every purpose in authz.forbidden_purposes {
		req := query(with_purpose(clinician("DE"), purpose), "Patient", "DE")
		"firewall.query.purpose-forbidden" in authz.deny with input as req
	}
}

test_lookup_for_other_purposes if {
	every purpose in {"TREAT", "COC", "PATRQT", "ETREAT", "PUBHLTH", "HRESCH", ""} {
		req := query(with_purpose(clinician("DE"), purpose), "Patient", "DE")
		not "firewall.query.purpose-forbidden" in authz.deny with input as req
	}
}

test_migration_status_never_for_forbidden_purposes if {
	every purpose in authz.forbidden_purposes {
		req := release(with_purpose(clinician("DE"), purpose), migration_context, "DE", migstat_consent(purpose))
		d := authz.decision with input as req
		not d.allow
		"firewall.migstat.purpose-forbidden" in d.reasons
	}
}

# Whatever else is configured: a class table that lets GOV see class S
# changes nothing.
test_firewall_holds_whatever_the_class_table_says if {
	req := release(with_purpose(clinician("DE"), "GOV"), migration_context, "DE", migstat_consent("GOV"))
	"firewall.migstat.purpose-forbidden" in authz.deny with input as req with data.data.classes.S.purposes as ["GOV"]
}

test_migration_status_not_for_other_purposes if {
	req := release(break_glass(clinician("DE")), migration_context, "DE", migstat_consent("ETREAT"))
	"firewall.migstat.purpose-not-allowed" in authz.deny with input as req
}

test_migration_status_needs_explicit_consent if {
	d := authz.decision with input as release(clinician("DE"), migration_context, "DE", [])
	d.reasons == ["firewall.migstat.consent-missing"]
	other_purpose := authz.deny with input as release(clinician("DE"), migration_context, "DE", migstat_consent("COC"))
	"firewall.migstat.consent-missing" in other_purpose
	withdrawn := array.concat(migstat_consent("TREAT"), [provision("deny", {"level": 1})])
	"firewall.migstat.consent-missing" in authz.deny with input as release(clinician("DE"), migration_context, "DE", withdrawn)
}

test_migration_status_with_explicit_consent if {
	d := authz.decision with input as release(clinician("DE"), migration_context, "DE", migstat_consent("TREAT"))
	d.allow
	some o in d.obligations
	o.rule == "firewall.migstat.labels"
	{l.code | some l in o.labels} == {"R", "NOREUSE", "NORDSCLCDS"}
}

test_migration_status_cross_border_with_consent if {
	d := authz.decision with input as release(clinician("DE"), migration_context, "NL", migstat_consent("TREAT"))
	d.allow
	d.agreements == ["de-nl-2024", "de-nl-ua-2025"]
}

test_migration_status_cross_border_needs_an_agreement_for_the_purpose if {
	req := release(with_purpose(clinician("DE"), "PATRQT"), migration_context, "UA", migstat_consent("PATRQT"))
	denied := authz.deny with input as req
	"firewall.migstat.purpose-not-in-agreement" in denied
	"agreement.cross-border.purpose-not-covered" in denied
}

# The MIGSTAT label firewalls a resource whatever class the gateway gave.
test_migstat_label_firewalls if {
	res := object.union(migration_context, {"class": "C"})
	"firewall.migstat.consent-missing" in authz.deny with input as release(clinician("DE"), res, "DE", [])
}
