package federate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/migrant-health/mhg/conformance"
	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/mappings"
)

// object is a resource or element as decoded JSON (numbers as json.Number,
// so decimals keep their precision).
type object = map[string]any

// Extension URLs the Patient merge treats element by element.
const (
	extCitizenship   = "http://hl7.org/fhir/StructureDefinition/patient-citizenship"
	extNationality   = "http://hl7.org/fhir/StructureDefinition/patient-nationality"
	extBirthPlace    = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"
	extInterpreter   = "http://hl7.org/fhir/StructureDefinition/patient-interpreterRequired"
	extDataAbsent    = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
	systemISO3166    = conformance.SystemISO3166
	systemRFC3986    = "urn:ietf:rfc:3986"
	systemLOINC      = "http://loinc.org"
	systemEmptyReasn = "http://terminology.hl7.org/CodeSystem/list-empty-reason"
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

// decodeEntry renders a released entry as a JSON object.
func decodeEntry(e Entry) (object, error) {
	b, err := r4.Marshal(e.Resource)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", e.Type, err)
	}
	return decodeObject(b)
}

func decodeObject(b []byte) (object, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var o object
	if err := dec.Decode(&o); err != nil {
		return nil, err
	}
	return o, nil
}

func getStr(o object, k string) string {
	s, _ := o[k].(string)
	return s
}

func getObj(o object, k string) object {
	m, _ := o[k].(map[string]any)
	return m
}

func getList(o object, k string) []any {
	l, _ := o[k].([]any)
	return l
}

func objects(v any) []object {
	l, _ := v.([]any)
	out := make([]object, 0, len(l))
	for _, e := range l {
		if m, ok := e.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// canonical is a stable text form of a JSON value, for equality.
func canonical(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
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
func mergePatients(id, requesterCountry string, parts []patientPart, reg *IdentityRegistry) (object, []conflict) {
	out := object{"resourceType": "Patient", "id": id}
	var conflicts []conflict

	// meta: the MHP profile and every security label the parts carry.
	meta := object{"profile": []any{conformance.ProfilePatient}}
	var labels []any
	for _, p := range parts {
		labels = appendUnique(labels, getList(getObj(p.res, "meta"), "security")...)
	}
	if len(labels) > 0 {
		meta["security"] = labels
	}
	out["meta"] = meta

	// Extensions by url.
	var exts []any
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
	exts = append(exts, others...)
	if len(exts) > 0 {
		out["extension"] = exts
	}

	// Identifiers.
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
			lid, ok := reg.linkIdentifier(sys, val, types, p.src.Country())
			crosses := ok && lid.countries == nil
			if !crosses && p.src.Country() != requesterCountry {
				continue
			}
			key := sys + "|" + val
			if ok {
				key = lid.key
			}
			if seenID[key] {
				continue
			}
			seenID[key] = true
			ids = append(ids, ident)
		}
	}
	out["identifier"] = ids

	// Repeating elements: the union.
	for _, k := range []string{"name", "telecom", "address", "contact", "generalPractitioner"} {
		var l []any
		for _, p := range parts {
			l = appendUnique(l, getList(p.res, k)...)
		}
		if len(l) > 0 {
			out[k] = l
		}
	}
	if comm := mergeCommunication(parts); len(comm) > 0 {
		out["communication"] = comm
	}

	// Single-valued elements: kept when the sources agree.
	conflicts = append(conflicts, mergeBirthDate(out, parts)...)
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
	return out, conflicts
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

// dupRule says when two records of one type, from different sources, are
// the same clinical fact.
type dupRule struct {
	// code is the element (or choice stem) holding the CodeableConcept
	// that names the fact; two records share at least one coding.
	code string
	// date is the element or choice stem that dates the fact; "" when a
	// fact has no date of its own (an allergy).
	date string
	// partial lets dates of different precision match when one is a form
	// of the other (a chronic condition recorded from 2016 and 2016-05).
	// Otherwise dates must match to the day.
	partial bool
	// veto are elements whose values, when both records have them and
	// they differ, keep the records apart.
	veto []string
}

// dupRules define the duplicate key per type. Two records are one fact
// when they share a coding of the code, their dates match and no veto
// element differs.
var dupRules = map[string]dupRule{
	// The same vaccination recorded in two countries: vaccine and day; a
	// different lot number or status is another event.
	"Immunization": {code: "vaccineCode", date: "occurrence", veto: []string{"lotNumber", "status", "doseQuantity"}},
	"Condition": {code: "code", date: "onset", partial: true,
		veto: []string{"clinicalStatus", "verificationStatus", "severity", "abatementDateTime", "abatementString"}},
	"AllergyIntolerance": {code: "code",
		veto: []string{"clinicalStatus", "verificationStatus", "criticality", "type"}},
	"MedicationStatement": {code: "medication", date: "effective", veto: []string{"status", "dosage"}},
	"MedicationRequest":   {code: "medication", date: "authoredOn", veto: []string{"status", "dosageInstruction"}},
	"Observation":         {code: "code", date: "effective", veto: []string{"status", "valueQuantity", "valueCodeableConcept", "valueString", "valueBoolean", "valueInteger", "component"}},
	"Procedure":           {code: "code", date: "performed", veto: []string{"status"}},
}

// concept returns the CodeableConcept at an element or choice stem.
func concept(o object, stem string) object {
	if c := getObj(o, stem); c != nil {
		return c
	}
	return getObj(o, stem+"CodeableConcept")
}

func codingKeys(c object) []string {
	var out []string
	for _, cd := range objects(c["coding"]) {
		if s, code := getStr(cd, "system"), getStr(cd, "code"); s != "" && code != "" {
			out = append(out, s+"|"+code)
		}
	}
	return out
}

// factDate returns the date of a record at an element or choice stem, cut
// to the day.
func factDate(o object, stem string) string {
	if stem == "" {
		return ""
	}
	d := getStr(o, stem)
	for _, suffix := range []string{"DateTime", "Date", "Instant", "String"} {
		if d == "" {
			d = getStr(o, stem+suffix)
		}
	}
	if d == "" {
		d = getStr(getObj(o, stem+"Period"), "start")
	}
	if len(d) > 10 {
		d = d[:10]
	}
	return d
}

// duplicates reports whether b is the same fact as a.
func (r dupRule) duplicates(a, b object) bool {
	ka, kb := codingKeys(concept(a, r.code)), codingKeys(concept(b, r.code))
	shared := false
	for _, k := range ka {
		if slices.Contains(kb, k) {
			shared = true
			break
		}
	}
	if !shared {
		return false
	}
	da, db := factDate(a, r.date), factDate(b, r.date)
	if da != db && !(r.partial && da != "" && db != "" && (datePrefix(da, db) || datePrefix(db, da))) {
		return false
	}
	for _, v := range r.veto {
		va, oka := a[v]
		vb, okb := b[v]
		if oka && okb && canonical(va) != canonical(vb) {
			return false
		}
	}
	return true
}

// foldDuplicates folds records of the same fact into one item: items arrive in
// source order, each joins the first group whose every member it
// duplicates (so a chain of near matches never merges two distinct facts),
// and each group keeps the most complete record, with the codings of all
// and every original as origin. aliases maps the id of each folded record
// to the id kept.
func foldDuplicates(items []*item) (out []*item, aliases map[string]string) {
	aliases = map[string]string{}
	type group struct{ members []*item }
	var groups []*group
	for _, it := range items {
		rule, ok := dupRules[it.typ]
		var home *group
		if ok && !it.sensitive {
			for _, g := range groups {
				if g.members[0].typ != it.typ || g.members[0].sensitive {
					continue
				}
				all := true
				for _, m := range g.members {
					if !rule.duplicates(m.res, it.res) {
						all = false
						break
					}
				}
				if all {
					home = g
					break
				}
			}
		}
		if home == nil {
			home = &group{}
			groups = append(groups, home)
		}
		home.members = append(home.members, it)
	}
	for _, g := range groups {
		if len(g.members) == 1 {
			out = append(out, g.members[0])
			continue
		}
		rule := dupRules[g.members[0].typ]
		best := g.members[0]
		for _, m := range g.members[1:] {
			if richer(m.res, best.res, rule) {
				best = m
			}
		}
		kept := &item{typ: best.typ, id: best.id, res: best.res, sensitive: best.sensitive}
		kept.origins = append(kept.origins, best.origins...)
		kept.loss = append(kept.loss, best.loss...)
		code := concept(kept.res, rule.code)
		for _, m := range g.members {
			if m == best {
				continue
			}
			kept.origins = append(kept.origins, m.origins...)
			kept.loss = append(kept.loss, m.loss...)
			aliases[m.typ+"/"+m.id] = kept.typ + "/" + kept.id
			// Every national code stays beside the others.
			if code != nil {
				code["coding"] = appendUnique(getList(code, "coding"), getList(concept(m.res, rule.code), "coding")...)
			}
		}
		out = append(out, kept)
	}
	return out, aliases
}

// richer reports whether record a should be kept over b: a primary source
// over a secondary record, then the more precise date, then more elements.
func richer(a, b object, r dupRule) bool {
	pa, pb := a["primarySource"] == true, b["primarySource"] == true
	if pa != pb {
		return pa
	}
	if la, lb := len(factDate(a, r.date)), len(factDate(b, r.date)); la != lb {
		return la > lb
	}
	return len(a) > len(b)
}

// rewriteReferences makes every reference of a resource resolve inside the
// document: a reference to any linked record of the patient names the
// merged Patient, one to a folded duplicate names the record kept, one to
// a resource in the document stays, and any other loses its reference but
// keeps (or gets) a display, so that no reference points outside.
func rewriteReferences(v any, patients map[string]bool, patientRef string, inDoc map[string]bool, aliases map[string]string, omitted func(typ string) string) {
	switch t := v.(type) {
	case map[string]any:
		if ref, ok := t["reference"].(string); ok {
			typ, _, _ := strings.Cut(ref, "/")
			switch {
			case patients[ref]:
				t["reference"] = patientRef
			case aliases[ref] != "":
				t["reference"] = aliases[ref]
			case inDoc[ref], strings.HasPrefix(ref, "#"):
			default:
				delete(t, "reference")
				if getStr(t, "display") == "" {
					t["display"] = omitted(typ)
				}
			}
		}
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if k == "reference" {
				continue
			}
			rewriteReferences(t[k], patients, patientRef, inDoc, aliases, omitted)
		}
	case []any:
		for _, e := range t {
			rewriteReferences(e, patients, patientRef, inDoc, aliases, omitted)
		}
	}
}
