# The firewall between health care and everything else. Class S data
# (migration or residence status, status-revealing identifiers, anything
# labelled MIGSTAT) is released only for treatment, continuity of care or
# the patient's own request, with the patient's explicit consent, and never
# for government, legal, fraud, eligibility or coverage purposes. These
# rules hold whatever the agreements and the class table say.
package mhg.authz

forbidden_purposes := {
	"GOV", "HLEGAL", "FRAUD", "ELIGDTRM", "ELIGVER", "COVAUTH", "POARCH",
	"MILCDM", "HMARKT",
}

firewall_purposes := {"TREAT", "COC", "PATRQT"}

# Asking a source about a person already tells it the person is here: no
# source is contacted for a forbidden purpose. The purposes are those of
# forbidden_purposes, written out so that the engine looks this rule up by
# the requester's purpose instead of evaluating it for every query (a test
# keeps the two lists the same).
deny contains "firewall.query.purpose-forbidden" if {
	input.phase == "query"
	input.requester.purpose_of_use in {
		"GOV", "HLEGAL", "FRAUD", "ELIGDTRM", "ELIGVER", "COVAUTH", "POARCH",
		"MILCDM", "HMARKT",
	}
}

deny contains "firewall.migstat.purpose-forbidden" if {
	input.phase == "release"
	data_class == "S"
	purpose in forbidden_purposes
}

deny contains "firewall.migstat.purpose-not-allowed" if {
	input.phase == "release"
	data_class == "S"
	not purpose in firewall_purposes
	not purpose in forbidden_purposes
}

# Explicit consent: a permit that applies to the requester, names the
# MIGSTAT label and names the requester's purpose.
migstat_consent if {
	not consent_denies
	some i in requester_permits
	provision := input.consent[i]
	"MIGSTAT" in provision.security_labels
	purpose in provision.purposes
}

deny contains "firewall.migstat.consent-missing" if {
	input.phase == "release"
	data_class == "S"
	not migstat_consent
}

# Across borders the purpose must also be one an agreement in force names
# and that covers the release.
deny contains "firewall.migstat.purpose-not-in-agreement" if {
	input.phase == "release"
	data_class == "S"
	cross_border
	count(permitting_agreements) == 0
}

# Whatever is released from class S keeps its restrictions downstream.
obligations contains {
	"kind": "label",
	"labels": [
		{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"},
		{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "NOREUSE"},
		{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "NORDSCLCDS"},
	],
	"rule": "firewall.migstat.labels",
} if {
	input.phase == "release"
	data_class == "S"
}
