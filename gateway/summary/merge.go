package summary

import (
	"fmt"
	"strings"

	"github.com/migrant-health/mhg/conformance"
	"github.com/migrant-health/mhg/mappings"
)

// Extension URLs the Patient merge treats element by element.
const (
	extCitizenship        = "http://hl7.org/fhir/StructureDefinition/patient-citizenship"
	extNationality        = "http://hl7.org/fhir/StructureDefinition/patient-nationality"
	extBirthPlace         = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"
	extInterpreter        = "http://hl7.org/fhir/StructureDefinition/patient-interpreterRequired"
	extDataAbsent         = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
	systemISO3166         = conformance.SystemISO3166
	systemRFC3986         = "urn:ietf:rfc:3986"
	systemConfidentiality = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
	systemActCode         = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
	systemLOINC           = "http://loinc.org"
	systemEmptyReasn      = "http://terminology.hl7.org/CodeSystem/list-empty-reason"
)

// origin is one national original behind an entry of the document.
type origin struct {
	src Source
	// typ and id are the original's type and gateway id.
	typ, id string
}

// item is one resource of the document, with the originals it stands for.
type item struct {
	typ, id string
	res     object
	// origins are the national originals, the one whose content is kept
	// first.
	origins []origin
	// loss gathers the mapping loss reports of every original.
	loss []lossNote
	// sensitive marks class S data (the migration context), kept out of
	// the Composition.
	sensitive bool
}

type lossNote struct {
	origin origin
	issue  mappings.Issue
}

// conflict is an element the sources disagree on, each value with its
// source: the merged Patient keeps only what they agree on, and the
// document shows every value side by side.
type conflict struct {
	// field is the narrative phrase key naming the element.
	field string
	// path is the FHIRPath of the element.
	path   string
	values []sourcedValue
}

type sourcedValue struct {
	src   Source
	value string
}

// patientPart is one source's released Patient.
type patientPart struct {
	src Source
	id  string
	res object
}

// mergePatients builds the document's one Patient from every source's
// record of the person, under the MHP rules:
//
//   - repeating elements (names, telecoms, addresses, contacts,
//     citizenships, nationalities, languages) are the union of the sources',
//     duplicates removed: two citizenships stay two;
//   - identifiers are those that cross borders, plus national and local ones
//     only from sources of the requester's own country (MHP: national
//     identifiers pass only to the same jurisdiction), plus the gateway
//     pseudonym;
//   - birthDate keeps partial dates partial: dates that agree (one may be
//     more precise: 1991 and 1991-03-14) give the most precise one; dates
//     that disagree give what they share (1991-03-14 and 1991-04-14 give
//     1991), or nothing and a data-absent-reason "as-text" when even the
//     year differs;
//   - any other single-valued element the sources disagree on (gender,
//     country of birth, deceased) is left out rather than picked;
//   - an interpreter is required when any source says so.
//
// Every disagreement is returned as a conflict, shown side by side in the
// Patient's narrative and the document's OperationOutcome.
func mergePatients(id, requesterCountry string, parts []patientPart, reg Identifiers) (object, []conflict) {
	out := object{"resourceType": "Patient", "id": id}
	out["meta"] = mergeMeta(parts)
	exts, conflicts := mergeExtensions(parts)
	if len(exts) > 0 {
		out["extension"] = exts
	}
	out["identifier"] = mergeIdentifiers(id, requesterCountry, parts, reg)
	for _, k := range []string{"name", "telecom", "address", "contact", "generalPractitioner"} {
		if l := mergeRepeating(parts, k); len(l) > 0 {
			out[k] = l
		}
	}
	if comm := mergeCommunication(parts); len(comm) > 0 {
		out["communication"] = comm
	}
	conflicts = append(conflicts, mergeBirthDate(out, parts)...)
	conflicts = append(conflicts, mergeSingleValued(out, parts)...)
	return out, conflicts
}

// mergeMeta claims the MHP profile and every security label the parts
// carry.
func mergeMeta(parts []patientPart) object {
	meta := object{"profile": []any{conformance.ProfilePatient}}
	var labels []any
	for _, p := range parts {
		labels = appendUnique(labels, getList(getObj(p.res, "meta"), "security")...)
	}
	if len(labels) > 0 {
		meta["security"] = labels
	}
	return meta
}

// mergeExtensions merges the extensions by url: citizenships and
// nationalities are the union by country, the country of birth is kept
// when the sources agree, an interpreter is required when any source says
// so, and other extensions are the union.
func mergeExtensions(parts []patientPart) ([]any, []conflict) {
	var exts []any
	var conflicts []conflict
	var citizenship, nationality, others []any
	var birthPlaces []sourcedValue
	birthPlaceExt := map[string]any{}
	var countryless []any
	interpreter := map[string]bool{}
	for _, p := range parts {
		for _, e := range objects(p.res["extension"]) {
			switch getStr(e, "url") {
			case extCitizenship:
				citizenship = mergeCountryExtension(citizenship, e)
			case extNationality:
				nationality = mergeCountryExtension(nationality, e)
			case extBirthPlace:
				c := getStr(getObj(e, "valueAddress"), "country")
				if c == "" {
					countryless = append(countryless, e)
					continue
				}
				birthPlaces = append(birthPlaces, sourcedValue{p.src, c})
				if _, ok := birthPlaceExt[c]; !ok {
					birthPlaceExt[c] = e
				}
			case extInterpreter:
				if v, ok := e["valueBoolean"].(bool); ok {
					interpreter[fmt.Sprint(v)] = true
				}
			default:
				others = appendUnique(others, e)
			}
		}
	}
	exts = append(exts, citizenship...)
	exts = append(exts, nationality...)
	if v, c, ok := agreed("field.birthPlace", "Patient.extension('"+extBirthPlace+"')", birthPlaces); ok {
		exts = append(exts, birthPlaceExt[v])
	} else if c != nil {
		conflicts = append(conflicts, *c)
	} else if len(countryless) > 0 {
		exts = append(exts, countryless[0])
	}
	if interpreter["true"] {
		exts = append(exts, object{"url": extInterpreter, "valueBoolean": true})
	} else if interpreter["false"] {
		exts = append(exts, object{"url": extInterpreter, "valueBoolean": false})
	}
	return append(exts, others...), conflicts
}

// mergeIdentifiers keeps the gateway pseudonym, the identifiers that cross
// borders, and the others only from sources of the requester's country;
// the forms of one identifier (OID and URL systems) are kept once.
func mergeIdentifiers(id, requesterCountry string, parts []patientPart, reg Identifiers) []any {
	ids := []any{object{"use": "secondary", "system": conformance.SIDGatewayPseudonym, "value": id}}
	seenID := map[string]bool{}
	for _, p := range parts {
		for _, ident := range objects(p.res["identifier"]) {
			sys, val := getStr(ident, "system"), getStr(ident, "value")
			if sys == conformance.SIDGatewayPseudonym {
				continue
			}
			var types []string
			for _, c := range objects(getObj(ident, "type")["coding"]) {
				types = append(types, getStr(c, "system")+"|"+getStr(c, "code"))
			}
			key, crosses, ok := sys+"|"+val, false, false
			if reg != nil && sys != "" && val != "" {
				var k string
				if k, crosses, ok = reg.Classify(sys, val, types, p.src.Country); ok {
					key = k
				}
			}
			if !crosses && p.src.Country != requesterCountry {
				continue
			}
			if seenID[key] {
				continue
			}
			seenID[key] = true
			ids = append(ids, ident)
		}
	}
	return ids
}

// mergeRepeating is the union of a repeating element.
func mergeRepeating(parts []patientPart, k string) []any {
	var l []any
	for _, p := range parts {
		l = appendUnique(l, getList(p.res, k)...)
	}
	return l
}

// mergeSingleValued keeps a single-valued element (gender, marital status,
// multiple birth, deceased) when the sources agree, with the extension of
// the first source that gives it; a disagreement is a conflict and the
// element is left out.
func mergeSingleValued(out object, parts []patientPart) []conflict {
	var conflicts []conflict
	for _, f := range []struct{ key, field string }{
		{"gender", "field.gender"},
		{"maritalStatus", ""},
		{"multipleBirthBoolean", ""},
		{"multipleBirthInteger", ""},
		{"deceasedBoolean", ""},
		{"deceasedDateTime", ""},
	} {
		var vals []sourcedValue
		first := map[string]int{}
		for i, p := range parts {
			if v, ok := p.res[f.key]; ok {
				cv := canonical(v)
				vals = append(vals, sourcedValue{p.src, cv})
				if _, seen := first[cv]; !seen {
					first[cv] = i
				}
			}
		}
		v, c, ok := agreed(f.field, "Patient."+f.key, vals)
		switch {
		case ok:
			p := parts[first[v]]
			out[f.key] = p.res[f.key]
			if ext, has := p.res["_"+f.key]; has {
				out["_"+f.key] = ext
			}
		case c != nil:
			if c.field == "" {
				c.field = "Patient." + f.key
			}
			for i := range c.values {
				c.values[i].value = strings.Trim(c.values[i].value, `"`)
			}
			conflicts = append(conflicts, *c)
		}
	}
	return conflicts
}

// agreed returns the value every source gives, or the conflict when they
// differ, or neither when no source gives one.
func agreed(field, path string, vals []sourcedValue) (string, *conflict, bool) {
	if len(vals) == 0 {
		return "", nil, false
	}
	for _, v := range vals[1:] {
		if v.value != vals[0].value {
			return "", &conflict{field: field, path: path, values: vals}, false
		}
	}
	return vals[0].value, nil, true
}

// mergeBirthDate sets birthDate (or _birthDate) from the parts.
func mergeBirthDate(out object, parts []patientPart) []conflict {
	var vals []sourcedValue
	var best patientPart
	for _, p := range parts {
		if d := getStr(p.res, "birthDate"); d != "" {
			vals = append(vals, sourcedValue{p.src, d})
			if len(d) > len(getStr(best.res, "birthDate")) {
				best = p
			}
		}
	}
	if len(vals) == 0 {
		// No source knows it: the first data-absent-reason stands.
		for _, p := range parts {
			if ext, ok := p.res["_birthDate"]; ok {
				out["_birthDate"] = ext
				break
			}
		}
		return nil
	}
	most := getStr(best.res, "birthDate")
	compatible := true
	common := most
	for _, v := range vals {
		if !datePrefix(v.value, most) {
			compatible = false
		}
		// A less precise date that agrees (1980 beside 1980-05-02) does
		// not cut the shared date short.
		if !datePrefix(v.value, common) {
			common = commonDate(common, v.value)
		}
	}
	if compatible {
		out["birthDate"] = most
		if ext, ok := best.res["_birthDate"]; ok {
			out["_birthDate"] = ext
		}
		return nil
	}
	c := conflict{field: "field.birthDate", path: "Patient.birthDate", values: vals}
	if common != "" {
		out["birthDate"] = common
	} else {
		// The narrative carries the values: data-absent-reason as-text.
		out["_birthDate"] = object{"extension": []any{object{"url": extDataAbsent, "valueCode": "as-text"}}}
	}
	return []conflict{c}
}

// datePrefix reports whether the partial date a is b or a less precise
// form of it ("1991" of "1991-03-14").
func datePrefix(a, b string) bool {
	return a == b || (strings.HasPrefix(b, a) && len(b) > len(a) && b[len(a)] == '-')
}

// commonDate is the most precise partial date both a and b are forms of,
// or "".
func commonDate(a, b string) string {
	pa, pb := strings.Split(a, "-"), strings.Split(b, "-")
	var out []string
	for i := 0; i < len(pa) && i < len(pb) && i < 3; i++ {
		if pa[i] != pb[i] {
			break
		}
		out = append(out, pa[i])
	}
	return strings.Join(out, "-")
}

// mergeCountryExtension adds a citizenship or nationality extension unless
// one for the same country (and period) is there, in which case the
// codings of both are kept in one.
func mergeCountryExtension(list []any, e object) []any {
	key := countryKey(e)
	if key == "" {
		return appendUnique(list, e)
	}
	for _, prev := range objects(list) {
		if countryKey(prev) != key {
			continue
		}
		pc, ec := subCode(prev), subCode(e)
		if pc != nil && ec != nil {
			pc["coding"] = appendUnique(getList(pc, "coding"), getList(ec, "coding")...)
		}
		return list
	}
	return append(list, e)
}

// countryKey is the ISO 3166 code and period of a citizenship or
// nationality extension, or "".
func countryKey(e object) string {
	code := subCode(e)
	if code == nil {
		return ""
	}
	period := ""
	for _, sub := range objects(e["extension"]) {
		if getStr(sub, "url") == "period" {
			period = canonical(sub["valuePeriod"])
		}
	}
	for _, c := range objects(code["coding"]) {
		if getStr(c, "system") == systemISO3166 {
			return getStr(c, "code") + "|" + period
		}
	}
	return ""
}

func subCode(e object) object {
	for _, sub := range objects(e["extension"]) {
		if getStr(sub, "url") == "code" {
			return getObj(sub, "valueCodeableConcept")
		}
	}
	return nil
}

// mergeCommunication merges Patient.communication by language: one entry
// per language, preferred when any source prefers it.
func mergeCommunication(parts []patientPart) []any {
	var out []any
	index := map[string]object{}
	for _, p := range parts {
		for _, c := range objects(p.res["communication"]) {
			lang := ""
			for _, cd := range objects(getObj(c, "language")["coding"]) {
				lang = strings.ToLower(getStr(cd, "code"))
				break
			}
			if lang == "" {
				out = appendUnique(out, c)
				continue
			}
			if prev, ok := index[lang]; ok {
				if c["preferred"] == true {
					prev["preferred"] = true
				}
				continue
			}
			cp := object{}
			for k, v := range c {
				cp[k] = v
			}
			index[lang] = cp
			out = append(out, cp)
		}
	}
	return out
}

// appendUnique appends the values not already in list (by canonical form).
func appendUnique(list []any, vals ...any) []any {
	seen := make(map[string]bool, len(list))
	for _, v := range list {
		seen[canonical(v)] = true
	}
	for _, v := range vals {
		k := canonical(v)
		if !seen[k] {
			seen[k] = true
			list = append(list, v)
		}
	}
	return list
}
