package mappings

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// selectionsFor lists the selections the tests try on one input: what the
// statistics read, each top-level element alone, and every element whose
// output depends on the whole resource.
func selectionsFor(root object) [][]string {
	out := [][]string{{"gender", "birthDate"}, {"birthDate"}, {"code", "onset", "abatement", "clinicalStatus", "verificationStatus"},
		{"status", "vaccineCode", "occurrence"}, {"deceased"}, {"extension"}, {"meta"}, {"modifierExtension", "gender"},
		{"ext"}, {"me"}, {""}, {"_birthDate"}, {"gen", "birth"}}
	keys := make([]string, 0, len(root))
	for k := range root {
		keys = append(keys, strings.TrimPrefix(k, "_"))
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, []string{k})
	}
	return out
}

// selected is what MapSelected promises: Map's main output restricted to
// the selection, with resourceType and id.
func selected(res Result, sel *Selection) object {
	out := object{}
	for k, v := range res.Outputs[0].Tree {
		if k == "resourceType" || k == "id" || sel.has(k) {
			out[k] = v
		}
	}
	return out
}

func checkSelected(t *testing.T, e *Engine, profile, name string, in []byte, elements []string) {
	t.Helper()
	opts := testOptions(profile)
	opts.Tree = true
	sel := Select(elements...)
	res, errMap := e.Map(profile, in, opts)
	got, errSel := e.MapSelected(profile, in, opts, sel)
	if (errMap != nil) != (errSel != nil) {
		t.Fatalf("%s %v: Map error %v, MapSelected error %v", name, elements, errMap, errSel)
	}
	if errMap != nil {
		return
	}
	if want := selected(res, sel); !reflect.DeepEqual(got, want) {
		t.Errorf("%s %v:\nMapSelected %v\nMap         %v", name, elements, got, want)
	}
}

// MapSelected gives exactly the selected elements of Map's main output,
// and fails exactly when Map fails, for every fixture of every profile and
// every element of each alone.
func TestMapSelectedAsMap(t *testing.T) {
	t.Parallel()
	e := testEngine(t)
	for _, profile := range profilesWithFixtures(t) {
		t.Run(profile, func(t *testing.T) {
			for _, file := range inputFiles(t, profile) {
				for i, in := range fixtureResources(t, readFixture(t, file)) {
					root, err := decodeObject(in)
					if err != nil {
						t.Fatal(err)
					}
					for _, elements := range selectionsFor(root) {
						checkSelected(t, e, profile, fmt.Sprintf("%s[%d]", file, i), in, elements)
					}
				}
			}
		})
	}
}

// What MapSelected does not decode can still fail the mapping (an unknown
// modifier extension deep in an element not selected), and input Map
// cannot read fails it too.
func TestMapSelectedFailsAsMap(t *testing.T) {
	t.Parallel()
	e := testEngine(t)
	cases := map[string]string{
		"unknown modifier extension in contact": `{"resourceType":"Patient","id":"p","gender":"male","contact":[{"modifierExtension":[{"url":"http://example.org/x","valueBoolean":true}]}]}`,
		"escaped modifier extension":            `{"resourceType":"Patient","id":"p","gender":"male","contact":[{"modifierExtensio\u006e":[{"url":"http://example.org/x","valueBoolean":true}]}]}`,
		"unknown top-level modifier extension":  `{"resourceType":"Patient","id":"p","modifierExtension":[{"url":"http://example.org/x","valueBoolean":true}],"gender":"male"}`,
		"known modifier extension elsewhere":    `{"resourceType":"Patient","id":"p","gender":"female","name":[{"family":"modifierExtension"}]}`,
		"bad string in skipped element":         `{"resourceType":"Patient","id":"p","gender":"male","name":[{"family":"a` + "\x01" + `"}]}`,
		"bad escape in skipped element":         `{"resourceType":"Patient","id":"p","gender":"male","name":[{"family":"a\q"}]}`,
		"bad number in skipped element":         `{"resourceType":"Patient","id":"p","gender":"male","multipleBirthInteger":01}`,
		"unclosed skipped element":              `{"resourceType":"Patient","id":"p","gender":"male","name":[{"family":"a"}`,
		"trailing data":                         `{"resourceType":"Patient","id":"p","gender":"male"} x`,
		"repeated selected key":                 `{"resourceType":"Patient","id":"p","gender":"male","name":[],"gender":"female"}`,
		"repeated skipped key":                  `{"resourceType":"Patient","id":"p","name":[{"family":"a"}],"gender":"male","name":[{"family":"b"}]}`,
		"not an object":                         `[{"resourceType":"Patient"}]`,
		"no resource type":                      `{"id":"p","gender":"male"}`,
		"birth date from a date-accuracy":       `{"resourceType":"Patient","id":"p","birthDate":"1980-07-01","_birthDate":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/data-absent-reason","valueCode":"unknown"}]}}`,
	}
	for _, profile := range e.Profiles() {
		for name, in := range cases {
			for _, elements := range [][]string{{"gender", "birthDate"}, {"name"}, {"extension"}} {
				checkSelected(t, e, profile, name, []byte(in), elements)
			}
			_, err := e.MapSelected(profile, []byte(in), Options{}, Select("gender"))
			if fails := !strings.HasPrefix(name, "known") && !strings.HasPrefix(name, "repeated") && !strings.HasPrefix(name, "birth"); fails != (err != nil) {
				t.Errorf("%s %s: error %v", profile, name, err)
			}
		}
	}
}
