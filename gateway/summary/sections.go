package summary

// section is one Composition section the document has.
type section struct {
	key, code, display string
	required           bool
	accepts            func(*item) bool
}

func ofType(types ...string) func(*item) bool {
	return func(it *item) bool {
		for _, t := range types {
			if it.typ == t {
				return true
			}
		}
		return false
	}
}

func either(a, b func(*item) bool) func(*item) bool {
	return func(it *item) bool { return a(it) || b(it) }
}

func observationIn(category string) func(*item) bool {
	return func(it *item) bool {
		return it.typ == "Observation" && observationCategory(it.res) == category
	}
}

// observationCategory sorts Observations into the vital-signs and
// social-history sections; the rest are results.
func observationCategory(o object) string {
	for _, c := range objects(o["category"]) {
		for _, cd := range objects(c["coding"]) {
			switch getStr(cd, "code") {
			case "vital-signs", "social-history":
				return getStr(cd, "code")
			}
		}
	}
	return ""
}

// sections are the IPS sections, in document order: the three required
// ones always, the others when they have entries.
var sections = []section{
	{"section.problems", "11450-4", "Problem list - Reported", true, ofType("Condition")},
	{"section.allergies", "48765-2", "Allergies and adverse reactions Document", true, ofType("AllergyIntolerance")},
	{"section.medications", "10160-0", "History of Medication use Narrative", true, ofType("MedicationStatement", "MedicationRequest")},
	{"section.immunizations", "11369-6", "History of Immunization Narrative", false, ofType("Immunization")},
	{"section.results", "30954-2", "Relevant diagnostic tests/laboratory data Narrative", false, either(ofType("DiagnosticReport"), observationIn(""))},
	{"section.procedures", "47519-4", "History of Procedures Document", false, ofType("Procedure")},
	{"section.vital-signs", "8716-3", "Vital signs", false, observationIn("vital-signs")},
	{"section.social-history", "29762-2", "Social history Narrative", false, observationIn("social-history")},
}
