package mappings

// ICD-10-GM diagnosis certainty (Diagnosesicherheit, KBV coding rules) says
// whether a coded diagnosis is confirmed, suspected, excluded or past. A
// reader outside Germany does not know the German extension, so the
// resource transform icd-10-gm-certainty writes what it means into the
// elements every FHIR reader knows, as de.basisprofil defines the
// equivalence:
//
//	A (ausgeschlossen)         verificationStatus refuted, no clinicalStatus
//	G (gesicherte Diagnose)    verificationStatus confirmed, clinicalStatus active
//	V (Verdacht auf)           verificationStatus provisional, clinicalStatus active
//	Z (Zustand nach)           verificationStatus confirmed, clinicalStatus resolved
//
// The extension stays on the national coding. What the source already says
// is never overwritten: a contradiction is reported instead.

const (
	extGMCertainty        = "http://fhir.de/StructureDefinition/icd-10-gm-diagnosesicherheit"
	sysGMCertainty        = "https://fhir.kbv.de/CodeSystem/KBV_CS_SFHIR_ICD_DIAGNOSESICHERHEIT"
	sysConditionVerStatus = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
	sysConditionClinical  = "http://terminology.hl7.org/CodeSystem/condition-clinical"
)

// gmCertainty is the de.basisprofil equivalence of each certainty code.
// also lists verification codes that agree as well (V: differential).
var gmCertainty = map[string]struct {
	meaning, verification, clinical string
	also                            []string
}{
	"A": {meaning: "excluded", verification: "refuted"},
	"G": {meaning: "confirmed", verification: "confirmed", clinical: "active"},
	"V": {meaning: "suspected", verification: "provisional", clinical: "active", also: []string{"differential", "unconfirmed"}},
	"Z": {meaning: "status after", verification: "confirmed", clinical: "resolved"},
}

var conditionStatusDisplay = map[string]string{
	"confirmed": "Confirmed", "provisional": "Provisional", "refuted": "Refuted",
	"active": "Active", "resolved": "Resolved",
}

// icd10GMCertainty is the resource transform icd-10-gm-certainty
// (Condition).
func icd10GMCertainty(m *mapper, root object) {
	const path = "Condition.code.coding.extension(" + extGMCertainty + ")"
	codes := map[string]bool{}
	for _, c := range objects(getObj(root, "code")["coding"]) {
		for _, e := range objects(c["extension"]) {
			if getStr(e, "url") != extGMCertainty {
				continue
			}
			v := getObj(e, "valueCoding")
			code := getStr(v, "code")
			if _, known := gmCertainty[code]; !known || getStr(v, "system") != sysGMCertainty {
				m.issue(sevWarning, codeNotSupported, path, "diagnosis certainty not in %s; the diagnosis is passed on without it being read", sysGMCertainty)
				return
			}
			codes[code] = true
		}
	}
	if len(codes) == 0 {
		return
	}
	if len(codes) > 1 {
		m.issue(sevWarning, codeProcessing, path, "the codings of one diagnosis carry different certainties; verificationStatus is not derived")
		return
	}
	var code string
	for c := range codes {
		code = c
	}
	want := gmCertainty[code]
	ver := getObj(root, "verificationStatus")
	switch {
	case ver == nil:
		root["verificationStatus"] = concept(sysConditionVerStatus, want.verification, conditionStatusDisplay[want.verification])
		m.issue(sevInfo, codeInformation, "Condition.verificationStatus", "verificationStatus %s derived from the ICD-10-GM diagnosis certainty (%s)", want.verification, want.meaning)
	case hasCoding(ver, sysConditionVerStatus, "entered-in-error"):
		return
	case !hasCoding(ver, sysConditionVerStatus, append([]string{want.verification}, want.also...)...):
		m.issue(sevWarning, codeProcessing, "Condition.verificationStatus", "verificationStatus contradicts the ICD-10-GM diagnosis certainty (%s); the source's verificationStatus is kept", want.meaning)
	}
	cl := getObj(root, "clinicalStatus")
	switch {
	case want.clinical == "" && cl != nil:
		m.issue(sevWarning, codeProcessing, "Condition.clinicalStatus", "a clinicalStatus on an excluded diagnosis (certainty A) is kept as the source sent it")
	case want.clinical != "" && cl == nil:
		root["clinicalStatus"] = concept(sysConditionClinical, want.clinical, conditionStatusDisplay[want.clinical])
		m.issue(sevInfo, codeInformation, "Condition.clinicalStatus", "clinicalStatus %s derived from the ICD-10-GM diagnosis certainty (%s)", want.clinical, want.meaning)
	case code == "Z" && hasCoding(cl, sysConditionClinical, "active", "recurrence", "relapse"):
		m.issue(sevWarning, codeProcessing, "Condition.clinicalStatus", "clinicalStatus contradicts the ICD-10-GM diagnosis certainty (status after); the source's clinicalStatus is kept")
	}
}

// hasCoding reports whether a CodeableConcept has a coding of system with
// one of the codes.
func hasCoding(cc object, system string, codes ...string) bool {
	for _, c := range objects(cc["coding"]) {
		if getStr(c, "system") != system {
			continue
		}
		for _, code := range codes {
			if getStr(c, "code") == code {
				return true
			}
		}
	}
	return false
}
