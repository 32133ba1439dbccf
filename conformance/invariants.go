package conformance

import (
	"strconv"
	"strings"
)

// invariantFunc evaluates one invariant on an occurrence of the element it
// is declared on: v is its JSON value, ext the primitive extension object
// (for primitives), loc its location. It returns the locations that break
// the invariant; nil means it holds.
//
// The StructureDefinitions carry each invariant's FHIRPath expression for
// other validators; this checker does not interpret FHIRPath, so every key
// used in a shipped artifact must have a Go implementation here (compile
// refuses an artifact with an unknown key).
type invariantFunc func(v, ext any, loc string) []string

var invariants = map[string]invariantFunc{
	"bdl-ips-1":  compositionFirstAndOnly,
	"ips-comp-1": sectionEntryOrEmptyReason,
	"ips-pat-1":  nameHasPart,
	"mhp-1":      checkedGlobally,
	"mhp-pat-1":  birthDateOrAbsentReason,
	"mhp-pat-2":  noClassSInPatient,
	"mhp-pat-3":  noOriginOnlyExtensions,
	"mhp-pat-4":  addressCountryAlpha2,
	"mhp-bdl-1":  noMigrationContextEntry,
	"mhp-mc-1":   statusIdentifierLabelledIDS,
}

// checkedGlobally stands for mhp-1 (no ILGIM code): walker.forbidden checks
// it over the whole document, so that resources claiming no profile, and
// codes inside contained resources, are covered once.
func checkedGlobally(any, any, string) []string { return nil }

func fail(loc string) []string { return []string{loc} }

func asObject(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func asArray(v any) []any {
	switch x := v.(type) {
	case []any:
		return x
	case nil:
		return nil
	default:
		return []any{x}
	}
}

func present(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case string:
		return x != ""
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	default:
		return true
	}
}

// compositionFirstAndOnly is bdl-ips-1: the first entry is a Composition
// and no other entry is one.
func compositionFirstAndOnly(v, _ any, loc string) []string {
	entries := asArray(asObject(v)["entry"])
	var out []string
	for i, e := range entries {
		rt, _ := asObject(asObject(e)["resource"])["resourceType"].(string)
		switch {
		case i == 0 && rt != "Composition":
			out = append(out, loc+".entry[0]")
		case i > 0 && rt == "Composition":
			out = append(out, loc+".entry["+strconv.Itoa(i)+"]")
		}
	}
	if len(entries) == 0 {
		out = append(out, loc)
	}
	return out
}

// sectionEntryOrEmptyReason is ips-comp-1.
func sectionEntryOrEmptyReason(v, _ any, loc string) []string {
	s := asObject(v)
	if present(s["entry"]) || present(s["emptyReason"]) {
		return nil
	}
	return fail(loc)
}

// nameHasPart is ips-pat-1.
func nameHasPart(v, _ any, loc string) []string {
	n := asObject(v)
	if present(n["family"]) || present(n["given"]) || present(n["text"]) {
		return nil
	}
	return fail(loc)
}

const (
	extDataAbsentReason = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
	extSCCoding         = "http://hl7.org/fhir/StructureDefinition/iso21090-SC-coding"
	systemV3ActCode     = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
)

func hasExtension(obj map[string]any, url string) bool {
	for _, e := range asArray(obj["extension"]) {
		if u, _ := asObject(e)["url"].(string); u == url {
			return true
		}
	}
	return false
}

// birthDateOrAbsentReason is mhp-pat-1: IPS makes birthDate 1..1, and an
// undocumented birth date is said with data-absent-reason, never invented.
func birthDateOrAbsentReason(v, _ any, loc string) []string {
	p := asObject(v)
	if s, _ := p["birthDate"].(string); s != "" {
		return nil
	}
	if hasExtension(asObject(p["_birthDate"]), extDataAbsentReason) {
		return nil
	}
	return fail(loc + ".birthDate")
}

// statusRevealingSystems are identifier systems whose mere presence
// reveals a migration or residence status (reference §2.2, a.5). They are
// class S: the mapping moves them to mhp-migration-context.
var statusRevealingSystems = map[string]bool{
	"https://fhir.infoway-inforoute.ca/NamingSystem/ca-interim-federal-health-id":      true, // CA IFHP
	"https://fhir.infoway-inforoute.ca/NamingSystem/ca-permanent-resident-card-number": true, // CA PR card
	"http://nphies.sa/identifier/iqama":                                                true, // SA residence permit
	"http://nphies.sa/identifier/bordernumber":                                         true,
	"http://nphies.sa/identifier/visa":                                                 true,
	"urn:oid:1.2.250.1.213.1.4.9":                                                      true, // FR INS-NIA
}

// statusRevealingTypes are identifier type codes with the same effect (KE).
var statusRevealingTypes = map[string]bool{"ALIEN-ID": true, "REFUGEE-ID": true}

// statusExtensions carry residence, charging or migration status.
var statusExtensions = map[string]bool{
	"https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-ResidentialStatus":               true,
	"https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-OverseasVisitorChargingCategory": true,
	"http://hl7.org.nz/fhir/StructureDefinition/nz-residency":                                      true,
}

// originOnlyExtensions never leave the country of origin (race,
// ethnicity, indigenous status, tribe, iwi).
var originOnlyExtensions = map[string]bool{
	"http://hl7.org/fhir/us/core/StructureDefinition/us-core-race":                        true,
	"http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity":                   true,
	"http://hl7.org/fhir/us/core/StructureDefinition/us-core-tribal-affiliation":          true,
	"https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory":         true,
	"http://hl7.org/fhir/ca/baseline/StructureDefinition/ext-ethnicity":                   true,
	"http://hl7.org/fhir/ca/baseline/StructureDefinition/ext-aboriginalidentityindicator": true,
	"http://hl7.org/fhir/ca/baseline/StructureDefinition/ext-aboriginalidentitygroup":     true,
	"http://hl7.org.au/fhir/StructureDefinition/indigenous-status":                        true,
	"http://hl7.org.au/fhir/StructureDefinition/ethnicity":                                true,
	"http://hl7.org.nz/fhir/StructureDefinition/nz-ethnicity":                             true,
	"http://hl7.org.nz/fhir/StructureDefinition/nz-iwi":                                   true,
}

// noClassSInPatient is mhp-pat-2.
func noClassSInPatient(v, _ any, loc string) []string {
	p := asObject(v)
	var out []string
	for i, id := range asArray(p["identifier"]) {
		obj := asObject(id)
		l := loc + ".identifier[" + strconv.Itoa(i) + "]"
		if sys, _ := obj["system"].(string); statusRevealingSystems[sys] {
			out = append(out, l)
			continue
		}
		for _, c := range asArray(asObject(obj["type"])["coding"]) {
			if code, _ := asObject(c)["code"].(string); statusRevealingTypes[code] {
				out = append(out, l)
				break
			}
		}
	}
	for i, e := range asArray(p["extension"]) {
		if u, _ := asObject(e)["url"].(string); statusExtensions[u] {
			out = append(out, loc+".extension["+strconv.Itoa(i)+"]")
		}
	}
	return out
}

// noOriginOnlyExtensions is mhp-pat-3.
func noOriginOnlyExtensions(v, _ any, loc string) []string {
	var out []string
	for i, e := range asArray(asObject(v)["extension"]) {
		if u, _ := asObject(e)["url"].(string); originOnlyExtensions[u] {
			out = append(out, loc+".extension["+strconv.Itoa(i)+"]")
		}
	}
	return out
}

// addressCountryAlpha2 is mhp-pat-4 (a warning): the mapping normalises
// countries to alpha-2, or keeps the original text and adds the alpha-2
// code in iso21090-SC-coding.
func addressCountryAlpha2(v, _ any, loc string) []string {
	var out []string
	for i, a := range asArray(asObject(v)["address"]) {
		addr := asObject(a)
		c, hasC := addr["country"].(string)
		if !hasC {
			continue
		}
		if len(c) == 2 && strings.ToUpper(c) == c {
			if _, ok := CountryAlpha2(c); ok {
				continue
			}
		}
		if hasExtension(asObject(addr["_country"]), extSCCoding) {
			continue
		}
		out = append(out, loc+".address["+strconv.Itoa(i)+"].country")
	}
	return out
}

// noMigrationContextEntry is mhp-bdl-1 (a warning): class S stays out of
// documents unless the patient consented, which the document cannot show.
func noMigrationContextEntry(v, _ any, loc string) []string {
	var out []string
	for i, e := range asArray(asObject(v)["entry"]) {
		res := asObject(asObject(e)["resource"])
		for _, p := range asArray(asObject(res["meta"])["profile"]) {
			if s, _ := p.(string); strings.HasPrefix(s, ProfileMigrationContext) {
				out = append(out, loc+".entry["+strconv.Itoa(i)+"]")
				break
			}
		}
	}
	return out
}

// statusIdentifierLabelledIDS is mhp-mc-1.
func statusIdentifierLabelledIDS(v, _ any, loc string) []string {
	obs := asObject(v)
	if !hasExtension(obs, ExtStatusIdentifier) {
		return nil
	}
	for _, s := range asArray(asObject(obs["meta"])["security"]) {
		c := asObject(s)
		if sys, _ := c["system"].(string); sys == systemV3ActCode {
			if code, _ := c["code"].(string); code == "IDS" {
				return nil
			}
		}
	}
	return fail(loc + ".meta.security")
}
