package summary

import (
	"encoding/json"
	"strings"
	"testing"
)

func obj(t *testing.T, js string) object {
	t.Helper()
	o, err := decodeObject([]byte(js))
	if err != nil {
		t.Fatalf("%v: %s", err, js)
	}
	return o
}

func src(id, country string) Source { return Source{ID: id, Country: country} }

// identifiersFunc adapts a function to Identifiers.
type identifiersFunc func(system, value string, types []string, country string) (string, bool, bool)

func (f identifiersFunc) Classify(system, value string, types []string, country string) (string, bool, bool) {
	return f(system, value, types, country)
}

func TestMergePatients(t *testing.T) {
	// Passports cross borders; every other identifier is domestic.
	reg := identifiersFunc(func(system, value string, _ []string, _ string) (string, bool, bool) {
		return system + "|" + value, strings.HasPrefix(system, "http://hl7.org/fhir/sid/passport-"), true
	})
	de, nl, ua := src("de", "DE"), src("nl", "NL"), src("ua", "UA")
	cit := func(c string) string {
		return `{"url":"http://hl7.org/fhir/StructureDefinition/patient-citizenship","extension":[{"url":"code","valueCodeableConcept":{"coding":[{"system":"urn:iso:std:iso:3166","code":"` + c + `"}]}}]}`
	}
	bp := func(c string) string {
		return `{"url":"http://hl7.org/fhir/StructureDefinition/patient-birthPlace","valueAddress":{"country":"` + c + `"}}`
	}
	tests := []struct {
		name      string
		parts     []patientPart
		want      []string // substrings of the merged Patient
		notWant   []string
		conflicts []string // conflict paths
	}{
		{
			name: "partial dates agree: the most precise stays",
			parts: []patientPart{{src: de, res: obj(t, `{"birthDate":"1991"}`)}, {src: nl, res: obj(t, `{"birthDate":"1991-03-14"}`)},
				{src: ua, res: obj(t, `{"birthDate":"1991-03"}`)}},
			want: []string{`"birthDate":"1991-03-14"`},
		},
		{
			name:      "days disagree: the month they share, and a conflict",
			parts:     []patientPart{{src: de, res: obj(t, `{"birthDate":"1991-03-14"}`)}, {src: nl, res: obj(t, `{"birthDate":"1991-03-15"}`)}},
			want:      []string{`"birthDate":"1991-03"`},
			conflicts: []string{"Patient.birthDate"},
		},
		{
			name:      "years disagree: no date, data-absent-reason as-text",
			parts:     []patientPart{{src: de, res: obj(t, `{"birthDate":"1990"}`)}, {src: nl, res: obj(t, `{"birthDate":"1991"}`)}},
			want:      []string{`"_birthDate":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/data-absent-reason","valueCode":"as-text"}]}`},
			notWant:   []string{`"birthDate"`},
			conflicts: []string{"Patient.birthDate"},
		},
		{
			name: "unknown everywhere: the source's data-absent-reason stays",
			parts: []patientPart{{src: de, res: obj(t, `{"_birthDate":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/data-absent-reason","valueCode":"unknown"}]}}`)},
				{src: nl, res: obj(t, `{}`)}},
			want: []string{`"valueCode":"unknown"`},
		},
		{
			name:  "two citizenships stay two, the same one is one",
			parts: []patientPart{{src: de, res: obj(t, `{"extension":[`+cit("UA")+`]}`)}, {src: nl, res: obj(t, `{"extension":[`+cit("UA")+`,`+cit("PL")+`]}`)}},
			want:  []string{`"code":"UA"`, `"code":"PL"`},
		},
		{
			name:      "gender disagrees: left out",
			parts:     []patientPart{{src: de, res: obj(t, `{"gender":"female"}`)}, {src: nl, res: obj(t, `{"gender":"other"}`)}},
			notWant:   []string{`"gender"`},
			conflicts: []string{"Patient.gender"},
		},
		{
			name:  "gender agrees, with the source's extension",
			parts: []patientPart{{src: nl, res: obj(t, `{"gender":"female","_gender":{"extension":[{"url":"http://x.example","valueString":"F"}]}}`)}, {src: de, res: obj(t, `{"gender":"female"}`)}},
			want:  []string{`"gender":"female"`, `"valueString":"F"`},
		},
		{
			name:      "countries of birth disagree: left out",
			parts:     []patientPart{{src: de, res: obj(t, `{"extension":[`+bp("UA")+`]}`)}, {src: nl, res: obj(t, `{"extension":[`+bp("RU")+`]}`)}},
			notWant:   []string{"patient-birthPlace"},
			conflicts: []string{"Patient.extension('http://hl7.org/fhir/StructureDefinition/patient-birthPlace')"},
		},
		{
			name: "an interpreter is needed when one source says so",
			parts: []patientPart{{src: de, res: obj(t, `{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/patient-interpreterRequired","valueBoolean":false}]}`)},
				{src: nl, res: obj(t, `{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/patient-interpreterRequired","valueBoolean":true}]}`)}},
			want: []string{`"valueBoolean":true`},
		},
		{
			name: "identifiers: passports cross, national ids only to their own country",
			parts: []patientPart{
				{src: nl, res: obj(t, `{"identifier":[{"system":"http://fhir.nl/fhir/NamingSystem/bsn","value":"999991383"},{"system":"http://hl7.org/fhir/sid/passport-UKR","value":"P1"}]}`)},
				{src: de, res: obj(t, `{"identifier":[{"system":"https://h.example/pid","value":"PID-1"},{"system":"http://hl7.org/fhir/sid/passport-UKR","value":"P1"}]}`)}},
			want:    []string{`"value":"P1"`, `"value":"PID-1"`, `"system":"https://fhir.migrant-health.org/mhp/sid/mpi"`},
			notWant: []string{"999991383", `"value":"P1"},{"system":"http://hl7.org/fhir/sid/passport-UKR","value":"P1"`},
		},
		{
			name: "languages merged, preferred when any source prefers",
			parts: []patientPart{
				{src: de, res: obj(t, `{"communication":[{"language":{"coding":[{"system":"urn:ietf:bcp:47","code":"uk"}]}}]}`)},
				{src: ua, res: obj(t, `{"communication":[{"language":{"coding":[{"system":"urn:ietf:bcp:47","code":"uk","display":"Українська"}]},"preferred":true}]}`)}},
			want:    []string{`"communication":[{"language":{"coding":[{"code":"uk","system":"urn:ietf:bcp:47"}]},"preferred":true}]`},
			notWant: []string{"Українська"},
		},
		{
			name: "names and addresses: the union",
			parts: []patientPart{{src: de, res: obj(t, `{"name":[{"family":"Seitumerova"}],"address":[{"city":"Berlin"}]}`)},
				{src: ua, res: obj(t, `{"name":[{"family":"Сеітумерова"},{"family":"Seitumerova"}],"address":[{"city":"Херсон"}]}`)}},
			want: []string{`"name":[{"family":"Seitumerova"},{"family":"Сеітумерова"}]`, `"address":[{"city":"Berlin"},{"city":"Херсон"}]`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			merged, conflicts := mergePatients("gw-1", "DE", tt.parts, reg)
			b, err := json.Marshal(merged)
			if err != nil {
				t.Fatal(err)
			}
			js := string(b)
			for _, w := range tt.want {
				if !strings.Contains(js, w) {
					t.Errorf("lacks %s\n%s", w, js)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(js, w) {
					t.Errorf("has %s\n%s", w, js)
				}
			}
			var paths []string
			for _, c := range conflicts {
				paths = append(paths, c.path)
				if len(c.values) < 2 {
					t.Errorf("conflict %s with %d values", c.path, len(c.values))
				}
			}
			if strings.Join(paths, ",") != strings.Join(tt.conflicts, ",") {
				t.Errorf("conflicts %v, want %v", paths, tt.conflicts)
			}
		})
	}
}

func TestFoldDuplicates(t *testing.T) {
	covid := func(date, lot string, primary bool, extra string) string {
		return `{"resourceType":"Immunization","status":"completed","primarySource":` + map[bool]string{true: "true", false: "false"}[primary] +
			`,"vaccineCode":{"coding":[{"system":"http://snomed.info/sct","code":"1119349007"}` + extra + `]},"occurrenceDateTime":"` + date + `"` +
			map[bool]string{true: `,"lotNumber":"` + lot + `"`, false: ""}[lot != ""] + `}`
	}
	cond := func(code, onset, status string) string {
		return `{"resourceType":"Condition","code":{"coding":[{"system":"http://snomed.info/sct","code":"` + code + `"}]},"onsetDateTime":"` + onset +
			`","clinicalStatus":{"coding":[{"code":"` + status + `"}]}}`
	}
	allergy := func(crit string) string {
		return `{"resourceType":"AllergyIntolerance","code":{"coding":[{"system":"http://snomed.info/sct","code":"373270004"}]},"criticality":"` + crit + `"}`
	}
	tests := []struct {
		name  string
		items []string
		// groups are the sizes of the folded groups, in order.
		groups []int
		// kept is the index of the record kept for the first group.
		kept int
	}{
		{"the same dose in two countries", []string{covid("2021-09-14", "FF2382", false, ""), covid("2021-09-14T10:00:00+02:00", "FF2382", true, "")}, []int{2}, 1},
		{"another lot is another dose", []string{covid("2021-09-14", "FF2382", true, ""), covid("2021-09-14", "XX1", true, "")}, []int{1, 1}, 0},
		{"a lot on one side only", []string{covid("2021-09-14", "FF2382", true, ""), covid("2021-09-14", "", true, "")}, []int{2}, 0},
		{"another day is another dose", []string{covid("2021-09-14", "", true, ""), covid("2021-09-15", "", true, "")}, []int{1, 1}, 0},
		{"a dose known by year only is not matched", []string{covid("2021-09-14", "", true, ""), covid("2021", "", true, "")}, []int{1, 1}, 0},
		{"no shared code", []string{covid("2021-09-14", "", true, ""),
			`{"resourceType":"Immunization","status":"completed","vaccineCode":{"coding":[{"system":"http://www.whocc.no/atc","code":"J07BX03"}]},"occurrenceDateTime":"2021-09-14"}`}, []int{1, 1}, 0},
		{"a condition from 2016 and from 2016-05", []string{cond("40930008", "2016", "active"), cond("40930008", "2016-05", "active")}, []int{2}, 1},
		{"a resolved and an active condition stay apart", []string{cond("40930008", "2016", "active"), cond("40930008", "2016", "resolved")}, []int{1, 1}, 0},
		{"near matches do not chain", []string{cond("1", "2016-05", "active"), cond("1", "2016", "active"), cond("1", "2016-07", "active")}, []int{2, 1}, 0},
		{"allergies: same substance and criticality", []string{allergy("high"), allergy("high")}, []int{2}, 0},
		{"allergies: another criticality is kept apart", []string{allergy("high"), allergy("low")}, []int{1, 1}, 0},
		{"types never fold together", []string{cond("1", "2016", "active"),
			`{"resourceType":"Procedure","code":{"coding":[{"system":"http://snomed.info/sct","code":"1"}]},"performedDateTime":"2016"}`}, []int{1, 1}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var items []*item
			for i, js := range tt.items {
				o := obj(t, js)
				id := "r" + string(rune('0'+i))
				items = append(items, &item{typ: getStr(o, "resourceType"), id: id, res: o,
					origins: []origin{{src: src("s"+id, "XX"), typ: getStr(o, "resourceType"), id: id}}})
			}
			out, aliases := foldDuplicates(items)
			var sizes []int
			for _, it := range out {
				sizes = append(sizes, len(it.origins))
			}
			if len(sizes) != len(tt.groups) {
				t.Fatalf("groups %v, want %v", sizes, tt.groups)
			}
			for i := range sizes {
				if sizes[i] != tt.groups[i] {
					t.Fatalf("groups %v, want %v", sizes, tt.groups)
				}
			}
			if want := "r" + string(rune('0'+tt.kept)); out[0].id != want {
				t.Fatalf("kept %s, want %s", out[0].id, want)
			}
			if tt.groups[0] == 2 {
				other := "r0"
				if out[0].id == "r0" {
					other = "r1"
				}
				if aliases[out[0].typ+"/"+other] != out[0].typ+"/"+out[0].id {
					t.Fatalf("aliases %v", aliases)
				}
			}
		})
	}
	t.Run("every national code stays", func(t *testing.T) {
		a := obj(t, covid("2021-09-14", "", true, ""))
		b := obj(t, covid("2021-09-14", "", false, `,{"system":"urn:oid:2.16.840.1.113883.2.4.4.7","code":"2432501"}`))
		out, _ := foldDuplicates([]*item{{typ: "Immunization", id: "a", res: a}, {typ: "Immunization", id: "b", res: b}})
		js, _ := json.Marshal(out[0].res["vaccineCode"])
		if len(out) != 1 || out[0].id != "a" || !strings.Contains(string(js), "2432501") {
			t.Fatalf("kept %s with %s", out[0].id, js)
		}
	})
	t.Run("class S is never folded", func(t *testing.T) {
		a, b := obj(t, cond("1", "2016", "active")), obj(t, cond("1", "2016", "active"))
		out, _ := foldDuplicates([]*item{{typ: "Condition", id: "a", res: a, sensitive: true}, {typ: "Condition", id: "b", res: b}})
		if len(out) != 2 {
			t.Fatalf("%d items", len(out))
		}
	})
}

func TestRewriteReferences(t *testing.T) {
	res := obj(t, `{"subject":{"reference":"Patient/nl.1"},"performer":[{"actor":{"reference":"Practitioner/x"}},{"actor":{"reference":"Organization/y","display":"Clinic"}}],
		"partOf":[{"reference":"Procedure/old"}],"basedOn":[{"reference":"Procedure/kept"}],"contained":[{"resourceType":"Medication","id":"m"}],"medicationReference":{"reference":"#m"}}`)
	rewriteReferences(res, map[string]bool{"Patient/nl.1": true}, "Patient/gw", map[string]bool{"Procedure/kept": true, "Procedure/new": true},
		map[string]string{"Procedure/old": "Procedure/new"}, func(typ string) string { return typ + " omitted" })
	js, _ := json.Marshal(res)
	for _, want := range []string{`"subject":{"reference":"Patient/gw"}`, `{"actor":{"display":"Practitioner omitted"}}`, `{"actor":{"display":"Clinic"}}`,
		`"partOf":[{"reference":"Procedure/new"}]`, `"basedOn":[{"reference":"Procedure/kept"}]`, `"medicationReference":{"reference":"#m"}`} {
		if !strings.Contains(string(js), want) {
			t.Fatalf("lacks %s: %s", want, js)
		}
	}
}

func TestHighWaterMark(t *testing.T) {
	mk := func(labels ...string) *item {
		var sec []string
		for _, l := range labels {
			sys, code, _ := strings.Cut(l, "#")
			sec = append(sec, `{"system":"`+sys+`","code":"`+code+`"}`)
		}
		return &item{res: obj(t, `{"meta":{"security":[`+strings.Join(sec, ",")+`]}}`)}
	}
	const conf = systemConfidentiality + "#"
	const act = systemActCode + "#"
	tests := []struct {
		name   string
		items  []*item
		want   string
		labels int
	}{
		{"nothing labelled is normal", []*item{mk(), mk()}, "N", 0},
		{"low is raised to the floor", []*item{mk(conf + "L")}, "N", 0},
		{"restricted wins", []*item{mk(conf + "N"), mk(conf+"R", act+"NORDSCLCDS")}, "R", 1},
		{"very restricted wins", []*item{mk(conf + "V"), mk(conf + "R")}, "V", 0},
		{"sensitivity codes stay on their entries", []*item{mk(act+"HIV", act+"NORDSCLCDS"), mk(act + "NORDSCLCDS")}, "N", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, labels := highWaterMark(tt.items)
			if got != tt.want || len(labels) != tt.labels {
				t.Fatalf("%s %v, want %s and %d labels", got, labels, tt.want, tt.labels)
			}
		})
	}
}
