# What must be removed from a resource before it leaves, as redact
# obligations with FHIR element paths (policies/README.md explains the path
# syntax). Sensitive labels (HIV, PSY, SUD, ...) remove free text unless the
# patient's consent names the label for this requester; some elements never
# leave (religion), some never cross a border (national identifiers, race
# and ethnicity). The lists are data: policies/data/redaction.json.
# The label rules are looked at only for a resource that carries a label
# (input.resource.security[0]): the engine skips them, unevaluated, for
# every other request.
package mhg.authz

import data.data.redaction
import data.mhg.index

# Consent that names a label for this requester lifts its redaction.
consent_permits_label(code) if {
	not consent_denies
	some i in requester_permits
	code in input.consent[i].security_labels
}

sensitive_labels contains label.code if {
	input.phase == "release"
	some label in input.resource.security
	redaction.labels[label.code]
}

# "*.text" stands for the element of whatever type is released.
resolve_path(path) := concat("", [input.resource.type, trim_prefix(path, "*")]) if {
	startswith(path, "*.")
} else := path

obligations contains {
	"kind": "redact",
	"paths": sort({resolve_path(p) | some p in redaction.labels[code].paths}),
	"rule": concat(".", ["redaction.label", lower(code)]),
} if {
	input.resource.security[0]
	some code in sensitive_labels
	not consent_permits_label(code)
}

# Sensitive data keeps a restricted confidentiality label downstream.
obligations contains {
	"kind": "label",
	"labels": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}],
	"rule": "redaction.sensitive.confidentiality",
} if {
	input.resource.security[0]
	count(sensitive_labels) > 0
}

obligations contains {
	"kind": "redact",
	"paths": sort(redaction.elements.always[input.resource.type]),
	"rule": "redaction.element.always",
} if {
	input.phase == "release"
	count(redaction.elements.always[input.resource.type]) > 0
}

obligations contains {
	"kind": "redact",
	"paths": sort(redaction.elements.cross_border[input.resource.type]),
	"rule": "redaction.element.cross-border",
} if {
	input.phase == "release"
	cross_border
	count(redaction.elements.cross_border[input.resource.type]) > 0
}

# Obligations an agreement attaches to what is released under it.
obligations contains object.union(obligation, {"rule": concat(".", ["agreement.obligation", id])}) if {
	input.phase == "release"
	some id in permitting_agreements
	some obligation in index.agreements[id].obligations
}
