package mappings

import (
	"fmt"
	"sort"
	"strings"

	"github.com/migrant-health/mhg/conformance"
)

// The named Go transforms are the escape hatch for what a declarative rule
// cannot say. Each is listed, with its parameters, in README.md; a spec
// names one with `action: transform` (extension transforms) or under
// `resources.<Type>.transforms` (resource transforms).

// transformCtx is what an extension transform sees.
type transformCtx struct {
	m *mapper
	// owner is the object whose extension array holds the extension.
	owner object
	path  string
	with  map[string]string
	// parent and field name the primitive the extension sits on when it is
	// inside "_field" (nil otherwise).
	parent object
	field  string
}

// extensionTransform rewrites one extension into zero or more extensions.
// New Patient-level extensions go to tc.m.pending.
type extensionTransform struct {
	name string
	// params lists the accepted "with" keys; required ones are marked true.
	params map[string]bool
	fn     func(tc *transformCtx, ext object) []any
}

func (t *extensionTransform) check(with map[string]string) error {
	for k := range with {
		if _, ok := t.params[k]; !ok {
			return fmt.Errorf("unknown parameter %q", k)
		}
	}
	var missing []string
	for k, req := range t.params {
		if _, ok := with[k]; req && !ok {
			missing = append(missing, k)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		return fmt.Errorf("missing parameter(s) %s", strings.Join(missing, ", "))
	}
	if v, ok := with["type"]; ok {
		if _, known := recordedSexTypes[v]; !known && t.name == "recorded-sex" {
			return fmt.Errorf("type %q: want one of birth-sex, civil-register, individual-sex", v)
		}
	}
	if v, ok := with["keep-original"]; ok && v != "true" && v != "false" {
		return fmt.Errorf("keep-original must be true or false")
	}
	return nil
}

// resourceTransform changes a whole resource.
type resourceTransform struct {
	name string
	fn   func(m *mapper, root object)
}

var extensionTransforms map[string]*extensionTransform

var resourceTransforms = map[string]*resourceTransform{
	"consent-citizen-roles": {name: "consent-citizen-roles", fn: consentCitizenRoles},
	"icd-10-gm-certainty":   {name: "icd-10-gm-certainty", fn: icd10GMCertainty},
	"withhold-attachments":  {name: "withhold-attachments", fn: withholdAttachments},
}

func init() {
	extensionTransforms = map[string]*extensionTransform{
		"recorded-sex":       {name: "recorded-sex", params: map[string]bool{"type": true, "keep-original": false}, fn: recordedSex},
		"gender-identity":    {name: "gender-identity", params: map[string]bool{}, fn: genderIdentity},
		"interpreter-needed": {name: "interpreter-needed", params: map[string]bool{}, fn: interpreterNeeded},
		"arrival":            {name: "arrival", params: map[string]bool{}, fn: arrival},
		"date-accuracy":      {name: "date-accuracy", params: map[string]bool{}, fn: dateAccuracy},
		"fr-birth-place":     {name: "fr-birth-place", params: map[string]bool{}, fn: frBirthPlace},
	}
}

// recordedSexTypes are the kinds of recorded sex the transform knows, as
// individual-recordedSexOrGender.type.
var recordedSexTypes = map[string]object{
	// LOINC 76689-9 "Sex assigned at birth".
	"birth-sex": concept(sysLOINC, "76689-9", "Sex assigned at birth"),
	// No code exists for the sex in a civil register (DE Personenstand): text.
	"civil-register": {"text": "Sex recorded in the civil register"},
	"individual-sex": {"text": "Individual sex (US Core)"},
}

// recordedSex (us-core-birthsex, UKCore-BirthSex, CA ext-patientbirthsex,
// us-core-individual-sex, DE gender-amtlich-de) writes the national value
// as individual-recordedSexOrGender with the kind of record and the
// jurisdiction. with: type (birth-sex | civil-register | individual-sex),
// keep-original (true keeps the national extension too).
func recordedSex(tc *transformCtx, ext object) []any {
	value := sexValue(ext)
	if value == nil {
		tc.m.issue(sevWarning, codeNotSupported, tc.path, "%s has no value this transform can read; dropped", getStr(ext, "url"))
		return nil
	}
	parts := []any{
		object{"url": "value", "valueCodeableConcept": value},
		object{"url": "type", "valueCodeableConcept": deepCopy(recordedSexTypes[tc.with["type"]])},
	}
	if c := tc.m.country(); c != "" {
		parts = append(parts, object{"url": "jurisdiction", "valueCodeableConcept": concept(sysISO3166, c, countryName(c))})
	}
	tc.m.pending = append(tc.m.pending, object{"url": extRecordedSex, "extension": parts})
	if tc.with["keep-original"] == "true" {
		return []any{ext}
	}
	return nil
}

// sexValue reads a sex value from valueCode (v3 AdministrativeGender
// codes, as us-core-birthsex has), valueCoding or valueCodeableConcept.
func sexValue(ext object) object {
	if cc := getObj(ext, "valueCodeableConcept"); cc != nil {
		return deepCopy(cc).(object)
	}
	if c := getObj(ext, "valueCoding"); c != nil {
		return object{"coding": []any{deepCopy(c)}}
	}
	switch code := getStr(ext, "valueCode"); code {
	case "F":
		return concept(sysAdminGender, "F", "Female")
	case "M":
		return concept(sysAdminGender, "M", "Male")
	case "UN":
		return concept(sysAdminGender, "UN", "Undifferentiated")
	case "UNK", "ASKU", "OTH":
		return concept(sysNullFlavor, code, nullFlavorDisplay[code])
	case "248152002":
		// The retired us-core-sex writes SNOMED CT codes as valueCode.
		return concept(sysSNOMED, code, "Female")
	case "248153007":
		return concept(sysSNOMED, code, "Male")
	case "":
		return nil
	default:
		return object{"text": code}
	}
}

var nullFlavorDisplay = map[string]string{"UNK": "unknown", "ASKU": "asked but unknown", "OTH": "other"}

func (m *mapper) country() string {
	if m.opts.Country != "" {
		return m.opts.Country
	}
	return m.p.country
}

// genderIdentity moves the retired us-core-genderIdentity to
// individual-genderIdentity.
func genderIdentity(tc *transformCtx, ext object) []any {
	cc := getObj(ext, "valueCodeableConcept")
	if cc == nil {
		tc.m.issue(sevWarning, codeNotSupported, tc.path, "gender identity without a CodeableConcept value; dropped")
		return nil
	}
	tc.m.pending = append(tc.m.pending, object{"url": extGenderIdentity, "extension": []any{
		object{"url": "value", "valueCodeableConcept": cc},
	}})
	return nil
}

// interpreterNeeded turns us-core-interpreter-needed into
// patient-interpreterRequired (boolean). US Core binds it to the VSAC
// answer set "Yes No and Unknowns" and writes yes and no in SNOMED CT in
// its examples; systems also send HL7 v2 table 0136 Y/N. An unknown need
// (NullFlavor, data-absent-reason, SNOMED unknown) has no boolean: it is
// reported and left out. A code outside these is reported as not
// understood, never read as unknown.
func interpreterNeeded(tc *transformCtx, ext object) []any {
	if b, ok := ext["valueBoolean"].(bool); ok {
		tc.m.pending = append(tc.m.pending, object{"url": extInterpreter, "valueBoolean": b})
		return nil
	}
	var codes []codingKey
	if c := getObj(ext, "valueCoding"); c != nil {
		codes = append(codes, codingKey{getStr(c, "system"), getStr(c, "code")})
	}
	for _, c := range objects(getObj(ext, "valueCodeableConcept")["coding"]) {
		codes = append(codes, codingKey{getStr(c, "system"), getStr(c, "code")})
	}
	unknown := false
	for _, c := range codes {
		switch v := interpreterAnswers[c]; v {
		case answerYes, answerNo:
			tc.m.pending = append(tc.m.pending, object{"url": extInterpreter, "valueBoolean": v == answerYes})
			return nil
		case answerUnknown:
			unknown = true
		}
	}
	if unknown {
		tc.m.issue(sevInfo, codeInformation, tc.path, "interpreter need recorded as unknown; patient-interpreterRequired left out")
		return nil
	}
	tc.m.issue(sevWarning, codeNotSupported, tc.path, "interpreter need coded outside the value set the mapping reads (yes, no, unknown); dropped")
	return nil
}

type answer int

const (
	answerYes answer = iota + 1
	answerNo
	answerUnknown
)

const (
	sysV20136       = "http://terminology.hl7.org/CodeSystem/v2-0136"
	sysDataAbsentCS = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
)

// interpreterAnswers are the yes / no / unknown codes of
// us-core-interpreter-needed.
var interpreterAnswers = map[codingKey]answer{
	{sysSNOMED, "373066001"}:           answerYes,
	{sysSNOMED, "373067005"}:           answerNo,
	{sysSNOMED, "261665006"}:           answerUnknown,
	{sysV20136, "Y"}:                   answerYes,
	{sysV20136, "N"}:                   answerNo,
	{sysNullFlavor, "UNK"}:             answerUnknown,
	{sysNullFlavor, "ASKU"}:            answerUnknown,
	{sysNullFlavor, "NASK"}:            answerUnknown,
	{sysNullFlavor, "NI"}:              answerUnknown,
	{sysDataAbsentCS, "unknown"}:       answerUnknown,
	{sysDataAbsentCS, "asked-unknown"}: answerUnknown,
	{sysDataAbsentCS, "not-asked"}:     answerUnknown,
}

// AU date-accuracy-indicator: three letters for day, month and year, each A
// (accurate), E (estimated) or U (unknown).
const extAUDateAccuracy = "http://hl7.org.au/fhir/StructureDefinition/date-accuracy-indicator"

// auAccuracy reads an AU date-accuracy-indicator code and returns how many
// leading date parts (year, month, day) are known, and the MHP accuracy of
// what is kept.
func auAccuracy(code string) (keep int, accuracy string, ok bool) {
	if len(code) != 3 {
		return 0, "", false
	}
	day, month, year := code[0], code[1], code[2]
	for _, c := range []byte{day, month, year} {
		if c != 'A' && c != 'E' && c != 'U' {
			return 0, "", false
		}
	}
	parts := []byte{year, month, day}
	keep = 0
	for _, c := range parts {
		if c == 'U' {
			break
		}
		keep++
	}
	if keep == 0 {
		return 0, "unknown", true
	}
	accuracy = "accurate"
	for _, c := range parts[:keep] {
		if c == 'E' {
			accuracy = "estimated"
		}
	}
	return keep, accuracy, true
}

// truncateDate keeps the first n parts (year, month, day) of a FHIR date.
func truncateDate(d string, n int) string {
	parts := strings.SplitN(d, "-", 3)
	if n < len(parts) {
		parts = parts[:n]
	}
	return strings.Join(parts, "-")
}

func auCode(ext object) string {
	if c := getObj(ext, "valueCoding"); c != nil {
		return getStr(c, "code")
	}
	for _, c := range objects(getObj(ext, "valueCodeableConcept")["coding"]) {
		return getStr(c, "code")
	}
	return ""
}

// dateAccuracy reads the AU date-accuracy-indicator on a date (birthDate):
// parts marked unknown are removed from the date (never 01-01
// placeholders), and the MHP date-accuracy is added beside the AU one.
func dateAccuracy(tc *transformCtx, ext object) []any {
	keep, acc, ok := auAccuracy(auCode(ext))
	if !ok || tc.parent == nil {
		tc.m.issue(sevWarning, codeNotSupported, tc.path, "date accuracy indicator not understood; dropped")
		return nil
	}
	out := []any{ext, accuracyExt(acc)}
	d, isStr := tc.parent[tc.field].(string)
	if !isStr {
		return out
	}
	if keep == 0 {
		delete(tc.parent, tc.field)
		out = append(out, dataAbsent("unknown"))
		tc.m.issue(sevInfo, codeInformation, tc.path, "the date is marked wholly unknown; its value is replaced by data-absent-reason")
		return out
	}
	if t := truncateDate(d, keep); t != d {
		tc.parent[tc.field] = t
		tc.m.issue(sevInfo, codeInformation, tc.path, "date parts marked unknown were removed (placeholders are not passed on)")
	}
	return out
}

// arrival turns AU date-of-arrival (valueDate with a date-accuracy-indicator
// on it) into mhp-arrival: date (only the known parts), country of arrival
// (the source's), accuracy.
func arrival(tc *transformCtx, ext object) []any {
	d := getStr(ext, "valueDate")
	if d == "" {
		tc.m.issue(sevWarning, codeNotSupported, tc.path, "date of arrival without a date; dropped")
		return nil
	}
	acc := ""
	for _, e := range objects(getObj(ext, "_valueDate")["extension"]) {
		if getStr(e, "url") != extAUDateAccuracy {
			continue
		}
		keep, a, ok := auAccuracy(auCode(e))
		if !ok {
			continue
		}
		acc = a
		if keep == 0 {
			tc.m.issue(sevInfo, codeInformation, tc.path, "date of arrival marked wholly unknown; not passed on")
			return nil
		}
		d = truncateDate(d, keep)
	}
	parts := []any{object{"url": "date", "valueDate": d}}
	if c := tc.m.country(); c != "" {
		parts = append(parts, object{"url": "country", "valueCodeableConcept": concept(sysISO3166, c, countryName(c))})
	}
	if acc != "" {
		parts = append(parts, object{"url": "accuracy", "valueCode": acc})
	}
	tc.m.pending = append(tc.m.pending, object{"url": conformance.ExtArrival, "extension": parts})
	return nil
}

// citizenRoles are the v3 RoleCode _CitizenRoleType codes: a person's legal
// status in a country. R4 lets Consent.provision.actor.role use them; the
// MHP forbids it, so that citizenship can never become an access role.
var citizenRoles = map[string]bool{
	"CAS": true, "CASM": true, "CN": true, "CNRP": true, "CNRPM": true, "CPCA": true, "CRP": true, "CRPM": true,
}

const sysRoleCode = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"

// consentCitizenRoles removes Consent provision actors whose role is a
// citizen role type (actor.role is 1..1, so the whole actor goes).
func consentCitizenRoles(m *mapper, root object) {
	var visit func(prov object, path string)
	visit = func(prov object, path string) {
		actors, ok := prov["actor"].([]any)
		if ok {
			kept := actors[:0]
			for _, a := range actors {
				ao, _ := a.(object)
				bad := false
				for _, c := range objects(getObj(ao, "role")["coding"]) {
					if getStr(c, "system") == sysRoleCode && citizenRoles[getStr(c, "code")] {
						bad = true
					}
				}
				if bad {
					m.issue(sevWarning, codeSecurity, path+".actor", "a consent actor whose role is a citizen role type (legal status) was removed: the MHP forbids status as an access role")
					continue
				}
				kept = append(kept, a)
			}
			prov["actor"] = kept
		}
		for _, sub := range objects(prov["provision"]) {
			visit(sub, path+".provision")
		}
	}
	if prov := getObj(root, "provision"); prov != nil {
		visit(prov, "Consent.provision")
	}
}

// AttachmentRoute is how a mapped attachment's url begins when the gateway
// serves its bytes: "$attachment?content=N" (DocumentReference) or
// "$attachment?presentedForm=N" (DiagnosticReport), relative to the
// resource's own address. The gateway completes it to
// [base]/{type}/{id}/$attachment?...; the $attachment route re-reads the
// upstream resource under the release policy and serves the bytes.
const AttachmentRoute = "$attachment?"

// withholdAttachments keeps what an attachment holds or points to out of
// a DiagnosticReport (presentedForm) or DocumentReference
// (content.attachment): inline data has not been through the release
// policy's redaction, and a url names the national server, which a client
// must never reach directly. Each attachment keeps its description
// (content type, language, title, size, hash, creation); its data is
// removed and its url becomes the gateway's $attachment route
// (AttachmentRoute), which serves the bytes under the release policy.
func withholdAttachments(m *mapper, root object) {
	route := func(att object, param string, i int, path string) {
		_, hasData := att["data"]
		_, hasURL := att["url"]
		if !hasData && !hasURL {
			return
		}
		delete(att, "data")
		att["url"] = fmt.Sprintf("%s%s=%d", AttachmentRoute, param, i)
		m.issue(sevInfo, codeInformation, path,
			"the attachment's content is served by the gateway's $attachment route, not inline or from the source")
	}
	switch m.typ {
	case "DiagnosticReport":
		for i, att := range objects(root["presentedForm"]) {
			route(att, "presentedForm", i, fmt.Sprintf("DiagnosticReport.presentedForm[%d]", i))
		}
	case "DocumentReference":
		for i, c := range objects(root["content"]) {
			if att := getObj(c, "attachment"); att != nil {
				route(att, "content", i, fmt.Sprintf("DocumentReference.content[%d].attachment", i))
			}
		}
	}
}
