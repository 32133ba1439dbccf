package summary

import (
	"fmt"
	"html"
	"slices"
	"strings"

	"github.com/migrant-health/mhg/conformance/narrative"
)

// xhtmlNS is the namespace every FHIR narrative div declares.
const xhtmlNS = "http://www.w3.org/1999/xhtml"

// internationalSystems are code systems whose display a clinician in any
// country can read beside the source's own text.
var internationalSystems = []string{
	"http://snomed.info/sct", "http://loinc.org", "http://www.whocc.no/atc",
	"http://hl7.org/fhir/sid/icd-10", "http://hl7.org/fhir/sid/cvx",
}

// div wraps XHTML content in a narrative div in lang.
func div(lang, body string) string {
	return fmt.Sprintf(`<div xmlns="%s" lang="%s" xml:lang="%s">%s</div>`, xhtmlNS, lang, lang, body)
}

func esc(s string) string { return html.EscapeString(s) }

// label names a coded fact as the source wrote it, with the display of an
// international coding beside it when that says something else (a
// Ukrainian text gets its SNOMED CT display).
func label(c object) string {
	text := strings.TrimSpace(getStr(c, "text"))
	intl := ""
	first := ""
	for _, cd := range objects(c["coding"]) {
		d := getStr(cd, "display")
		if d == "" {
			d = getStr(cd, "code")
		}
		if first == "" {
			first = d
		}
		for _, s := range internationalSystems {
			if getStr(cd, "system") == s && intl == "" && getStr(cd, "display") != "" {
				intl = getStr(cd, "display")
			}
		}
	}
	switch {
	case text == "" && intl != "":
		return intl
	case text == "":
		return first
	case intl != "" && !strings.EqualFold(intl, text):
		return text + " (" + intl + ")"
	}
	return text
}

// row is one line of a section table.
type row struct {
	item, date, status, details string
	sources                     []origin
	notes                       []string
}

// rowOf describes one entry for the narrative.
func rowOf(it *item, p narrative.Phrases) row {
	o := it.res
	r := row{sources: it.origins}
	rule := dupRules[it.typ]
	switch it.typ {
	case "Condition":
		r.item = label(getObj(o, "code"))
		r.status = codedStatus(getObj(o, "clinicalStatus"), p)
		r.date = factDate(o, "onset")
		if r.date == "" {
			r.date = dateOnly(getStr(o, "recordedDate"))
		}
	case "AllergyIntolerance":
		r.item = label(getObj(o, "code"))
		r.status = codedStatus(getObj(o, "clinicalStatus"), p)
		r.date = factDate(o, "onset")
		if r.date == "" {
			r.date = dateOnly(getStr(o, "recordedDate"))
		}
		var det []string
		if c := getStr(o, "criticality"); c != "" {
			det = append(det, p.Text("criticality."+c))
		}
		for _, re := range objects(o["reaction"]) {
			for _, m := range objects(re["manifestation"]) {
				det = append(det, label(m))
			}
		}
		r.details = strings.Join(det, "; ")
	case "MedicationStatement", "MedicationRequest":
		r.item = label(concept(o, "medication"))
		if r.item == "" {
			r.item = getStr(getObj(o, "medicationReference"), "display")
		}
		r.status = statusText(getStr(o, "status"), p)
		r.date = factDate(o, rule.date)
		for _, k := range []string{"dosage", "dosageInstruction"} {
			for _, d := range objects(o[k]) {
				if t := getStr(d, "text"); t != "" {
					r.details = t
				}
			}
		}
	case "Immunization":
		r.item = label(getObj(o, "vaccineCode"))
		r.status = statusText(getStr(o, "status"), p)
		r.date = factDate(o, "occurrence")
		for _, pa := range objects(o["protocolApplied"]) {
			n := numberText(pa, "doseNumber")
			of := numberText(pa, "seriesDoses")
			switch {
			case n != "" && of != "":
				r.details = p.Text("detail.dose-of", "n", n, "of", of)
			case n != "":
				r.details = p.Text("detail.dose", "n", n)
			}
		}
	case "Observation":
		r.item = label(getObj(o, "code"))
		r.status = statusText(getStr(o, "status"), p)
		r.date = factDate(o, "effective")
		r.details = observationValue(o)
	case "Procedure":
		r.item = label(getObj(o, "code"))
		r.status = statusText(getStr(o, "status"), p)
		r.date = factDate(o, "performed")
	case "DiagnosticReport":
		r.item = label(getObj(o, "code"))
		r.status = statusText(getStr(o, "status"), p)
		r.date = factDate(o, "effective")
		r.details = getStr(o, "conclusion")
	default:
		r.item = it.typ
	}
	if r.item == "" {
		r.item = it.typ
	}
	for _, l := range it.loss {
		if l.issue.Severity == "warning" || l.issue.Severity == "error" {
			r.notes = append(r.notes, l.issue.Message)
		}
	}
	return r
}

func dateOnly(s string) string {
	if len(s) > 10 {
		return s[:10]
	}
	return s
}

func numberText(o object, stem string) string {
	for _, suffix := range []string{"PositiveInt", "String"} {
		if v, ok := o[stem+suffix]; ok {
			return fmt.Sprint(v)
		}
	}
	return ""
}

func observationValue(o object) string {
	if q := getObj(o, "valueQuantity"); q != nil {
		unit := getStr(q, "unit")
		if unit == "" {
			unit = getStr(q, "code")
		}
		return strings.TrimSpace(fmt.Sprint(q["value"]) + " " + unit)
	}
	if c := getObj(o, "valueCodeableConcept"); c != nil {
		return label(c)
	}
	for _, k := range []string{"valueString", "valueBoolean", "valueInteger", "valueDateTime"} {
		if v, ok := o[k]; ok {
			return fmt.Sprint(v)
		}
	}
	return ""
}

func codedStatus(c object, p narrative.Phrases) string {
	for _, cd := range objects(c["coding"]) {
		return statusText(getStr(cd, "code"), p)
	}
	return getStr(c, "text")
}

func statusText(code string, p narrative.Phrases) string {
	if code == "" {
		return ""
	}
	if p.Has("status." + code) {
		return p.Text("status." + code)
	}
	return code
}

// sourcesText names the sources of an entry: "UA (ua-ehealth), NL (nl-lsp)".
func sourcesText(origins []origin) string {
	seen := map[string]bool{}
	var parts []string
	for _, o := range origins {
		if seen[o.src.ID] {
			continue
		}
		seen[o.src.ID] = true
		parts = append(parts, o.src.Country+" ("+o.src.ID+")")
	}
	return strings.Join(parts, ", ")
}

// linksText says, per source, how its record was linked.
func linksText(p narrative.Phrases, links []Link) string {
	parts := make([]string, 0, len(links))
	for _, ln := range links {
		var how string
		switch h := ln.LinkedBy; h.By {
		case LinkIdentifier:
			how = p.Text("link.identifier", "kind", strings.Join(h.Kinds, ", "))
		case LinkMatch:
			how = p.Text("link.match", "score", fmt.Sprintf("%.4f", h.Score))
		default:
			how = p.Text("link.requested")
		}
		if ln.LinkedBy.Merged {
			how += p.Text("link.merged")
		}
		parts = append(parts, ln.Source.Country+" ("+ln.Source.ID+"): "+how)
	}
	return strings.Join(parts, "; ")
}

// english says how a record was linked, for OperationOutcome issues.
func (h LinkedBy) english() string {
	var s string
	switch h.By {
	case LinkIdentifier:
		s = "same identifier (" + strings.Join(h.Kinds, ", ") + ")"
	case LinkMatch:
		s = fmt.Sprintf("demographic match, grade certain (score %.4f)", h.Score)
	default:
		s = "the record asked for"
	}
	if h.Merged {
		s += "; the source had merged this person's records (Patient.link replaced-by, replaces or seealso) and its surviving record is used"
	}
	return s
}

// sectionNarrative renders a section: a table of its entries (or the
// empty-section sentence), mapping notes under the entries they concern,
// and what is missing because a source could not contribute.
func sectionNarrative(p narrative.Phrases, items []*item, missing string) string {
	var b strings.Builder
	if len(items) == 0 {
		b.WriteString("<p>" + esc(p.Text("section.empty")) + "</p>")
	} else {
		b.WriteString("<table><thead><tr>")
		for _, h := range []string{"column.item", "column.date", "column.status", "column.details", "column.source"} {
			b.WriteString("<th>" + esc(p.Text(h)) + "</th>")
		}
		b.WriteString("</tr></thead><tbody>")
		for _, it := range items {
			r := rowOf(it, p)
			fmt.Fprintf(&b, "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>",
				esc(r.item), esc(r.date), esc(r.status), esc(r.details), esc(sourcesText(r.sources)))
			for _, n := range r.notes {
				fmt.Fprintf(&b, `<tr><td colspan="5"><i>%s: %s</i></td></tr>`, esc(p.Text("mapping.note")), esc(n))
			}
		}
		b.WriteString("</tbody></table>")
	}
	b.WriteString(missing)
	return div(p.Lang(), b.String())
}

// missingNote renders the sources that could not contribute, or "".
func missingNote(p narrative.Phrases, warnings []Warning) string {
	if len(warnings) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("<p>" + esc(p.Text("missing.intro")) + "</p><ul>")
	for _, w := range warnings {
		key := "missing.other"
		switch w.Code {
		case "timeout", "unavailable", "truncated":
			key = "missing." + w.Code
		case "next-link":
			key = "missing.truncated"
		case "invalid-response", "mapping":
			key = "missing.invalid"
		case WarnAmbiguous:
			key = "missing.ambiguous"
		}
		b.WriteString("<li>" + esc(p.Text(key, "source", w.Source, "country", w.Country)) + "</li>")
	}
	b.WriteString("</ul>")
	return b.String()
}

// patientNarrative renders the merged Patient: names, birth date, the
// records it was linked from, and every value the sources disagree on,
// side by side with its source.
func patientNarrative(p narrative.Phrases, pat object, parts []patientPart, conflicts []conflict) string {
	var b strings.Builder
	var names []string
	for _, n := range objects(pat["name"]) {
		t := getStr(n, "text")
		if t == "" {
			var given []string
			for _, g := range getList(n, "given") {
				given = append(given, fmt.Sprint(g))
			}
			t = strings.TrimSpace(strings.Join(given, " ") + " " + getStr(n, "family"))
		}
		if t != "" && !slices.Contains(names, t) {
			names = append(names, t)
		}
	}
	b.WriteString("<p><b>" + esc(strings.Join(names, " / ")) + "</b>")
	if d := getStr(pat, "birthDate"); d != "" {
		b.WriteString(", " + esc(p.Text("field.birthDate")) + ": " + esc(d))
	}
	b.WriteString("</p>")
	var srcs []origin
	for _, pp := range parts {
		srcs = append(srcs, origin{src: pp.src})
	}
	b.WriteString("<p>" + esc(p.Text("patient.sources", "sources", sourcesText(srcs))) + "</p>")
	if len(conflicts) > 0 {
		b.WriteString("<p>" + esc(p.Text("conflict.intro")) + "</p><ul>")
		for _, c := range conflicts {
			var vals []string
			for _, v := range c.values {
				vals = append(vals, v.value+" ("+v.src.Country+", "+v.src.ID+")")
			}
			b.WriteString("<li>" + esc(p.Text("conflict.values", "field", p.Text(c.field), "values", strings.Join(vals, "; "))) + "</li>")
		}
		b.WriteString("</ul>")
	}
	return div(p.Lang(), b.String())
}
