package measures

import (
	"slices"
)

// PatientElements lists the top-level elements of the MHP Patient that the
// measure's criteria read (birthDate), sorted, so that an evaluator may
// map only those. ok is false when some criterion reads the Patient as a
// whole (Patient.where(...), Patient = ...): then every element counts.
func (m *Measure) PatientElements() (elements []string, ok bool) {
	for _, p := range m.Populations {
		if !patientElements(p.prog, nil, &elements) {
			return nil, false
		}
	}
	slices.Sort(elements)
	return slices.Compact(elements), true
}

// patientElements adds to out the Patient elements an expression reads,
// and reports false when it reads the Patient otherwise than by a member
// (Patient.birthDate, %subject.birthDate) or by whether it exists
// (Patient.exists()).
func patientElements(n, parent *node, out *[]string) bool {
	if n == nil {
		return true
	}
	if n.op == nRetrieve && n.name == "Patient" || n.op == nConst && n.name == "subject" {
		switch {
		case parent == nil:
			return false
		case parent.op == nPath && parent.args[0] == n:
			*out = append(*out, parent.name)
			return true
		case parent.op == nCall && parent.args[0] == n && len(parent.args) == 1 &&
			(parent.name == "exists" || parent.name == "empty" || parent.name == "count"):
			return true
		}
		return false
	}
	for _, a := range n.args {
		if !patientElements(a, n, out) {
			return false
		}
	}
	return true
}
