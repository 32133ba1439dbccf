# A deliberately discriminatory policy, for tests only: it denies on
# attributes of the person (nationality, sex, language) that WHA61.17 and
# the MHP forbid as inputs to access decisions. The gateway never supplies
# them; the engine refuses to load a rule that reads them and
# `mhg policy check` reports each one.
package mhg.authz

deny contains "bias.nationality" if input.resource.nationality == "SY"

deny contains "bias.gender" if input.patient.gender == "female"

deny contains "bias.language" if {
	requester := input.requester
	requester.language == "ar"
}
