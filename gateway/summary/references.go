package summary

import (
	"sort"
	"strings"
)

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
