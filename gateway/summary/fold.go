package summary

import "slices"

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
	// The same report in two countries: code and time; a different status
	// or conclusion is another version of it, kept.
	"DiagnosticReport": {code: "code", date: "effective", veto: []string{"status", "conclusion", "issued"}},
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
