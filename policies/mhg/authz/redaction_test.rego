package mhg.authz_test

import data.mhg.authz

obligation(d, rule) := [o | some o in d.obligations; o.rule == rule][0]

test_sensitive_label_redacts_free_text if {
	d := authz.decision with input as release(clinician("DE"), labelled("Condition", "HIV"), "DE", [])
	d.allow
	obligation(d, "redaction.label.hiv").paths == ["Condition.note", "Condition.text"]
	obligation(d, "redaction.sensitive.confidentiality").labels[0].code == "R"
}

test_consent_to_the_label_lifts_its_redaction if {
	consent := [provision("permit", {"security_labels": ["PSY"], "actor_countries": ["DE"]})]
	d := authz.decision with input as release(clinician("DE"), labelled("Condition", "PSY"), "DE", consent)
	d.allow
	not obligation(d, "redaction.label.psy")
	obligation(d, "redaction.sensitive.confidentiality")
}

test_label_paths_may_name_elements if {
	req := release(clinician("DE"), labelled("Observation", "SDV"), "DE", [])
	d := authz.decision with input as req with data.data.redaction.labels.SDV.paths as ["*.note", "Observation.performer"]
	obligation(d, "redaction.label.sdv").paths == ["Observation.note", "Observation.performer"]
}

test_unlisted_labels_redact_nothing if {
	d := authz.decision with input as release(clinician("DE"), labelled("Condition", "VIP"), "DE", [])
	d.allow
	d.obligations == []
}

test_religion_never_leaves if {
	d := authz.decision with input as release(clinician("DE"), resource("Patient"), "DE", [])
	d.allow
	[o.rule | some o in d.obligations] == ["redaction.element.always"]
}

test_identifiers_and_ethnicity_do_not_cross_borders if {
	d := authz.decision with input as release(clinician("DE"), resource("Patient"), "UA", [])
	d.allow
	paths := obligation(d, "redaction.element.cross-border").paths
	"Patient.identifier[system!=https://fhir.migrant-health.org/mhp/sid/mpi]" in paths
	"Patient.extension('http://hl7.org/fhir/us/core/StructureDefinition/us-core-race')" in paths
}

test_agreement_obligations_travel_with_the_data if {
	d := authz.decision with input as release(clinician("DE"), resource("Condition"), "UA", [])
	o := obligation(d, "agreement.obligation.de-nl-ua-2025")
	o.kind == "label"
	o.labels[0].code == "NORDSCLCDS"
}

test_query_phase_has_no_redaction if {
	d := authz.decision with input as query(clinician("DE"), "Patient", "UA")
	d.allow
	d.obligations == []
}
