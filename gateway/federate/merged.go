package federate

import (
	"context"
	"errors"
	"slices"

	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"

	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/gateway/source"
)

// maxReplacedHops bounds how many replaced-by links the gateway follows
// within one source to reach the record the source kept.
const maxReplacedHops = 3

// ErrAmbiguous: the identifier names more than one person in the sources
// that hold it, they are not records a source merged, and no source named
// only one: no record can be chosen safely.
var ErrAmbiguous = errors.New("the identifier names more than one person")

// patientLink is one Patient.link of a mapped Patient: the gateway id of
// the other Patient and the link type.
type patientLink struct {
	other string
	typ   cpb.LinkTypeCode_Value
}

// patientLinks lists the links of a mapped Patient to other Patients.
func patientLinks(cr *rpb.ContainedResource) []patientLink {
	var out []patientLink
	for _, l := range cr.GetPatient().GetLink() {
		id := l.GetOther().GetPatientId().GetValue()
		if id == "" {
			continue
		}
		out = append(out, patientLink{other: id, typ: l.GetType().GetValue()})
	}
	return out
}

// replacedBy returns the gateway id of the record that replaced p, "" when
// none did.
func replacedBy(cr *rpb.ContainedResource) string {
	for _, l := range patientLinks(cr) {
		if l.typ == cpb.LinkTypeCode_REPLACED_BY {
			return l.other
		}
	}
	return ""
}

// collapseMerged reduces persons that one source's answer holds to the one
// record it kept, when they are records the source itself linked
// (Patient.link replaced-by, replaces or seealso: its MPI links) into one
// group: the record nothing replaced, or, of several, the only active one.
// It reports whether it collapsed anything; persons that are not all so
// linked are left as they are (an ambiguous answer).
func collapseMerged(persons map[string]*person) (map[string]*person, bool) {
	if len(persons) < 2 {
		return persons, false
	}
	adj := map[string][]string{}
	replaced := map[string]bool{}
	for id, p := range persons {
		for _, l := range patientLinks(p.patient.res) {
			switch l.typ {
			case cpb.LinkTypeCode_REPLACED_BY:
				replaced[id] = true
			case cpb.LinkTypeCode_REPLACES:
				replaced[l.other] = true
			case cpb.LinkTypeCode_SEEALSO:
			default:
				continue
			}
			if _, found := persons[l.other]; found {
				adj[id] = append(adj[id], l.other)
				adj[l.other] = append(adj[l.other], id)
			}
		}
	}
	// One group: every person reachable from any one.
	var start string
	for id := range persons {
		start = id
		break
	}
	seen := map[string]bool{start: true}
	queue := []string{start}
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		for _, o := range adj[id] {
			if !seen[o] {
				seen[o] = true
				queue = append(queue, o)
			}
		}
	}
	if len(seen) != len(persons) {
		return persons, false
	}
	var kept []string
	for id := range persons {
		if !replaced[id] {
			kept = append(kept, id)
		}
	}
	if len(kept) > 1 {
		var active []string
		for _, id := range kept {
			if persons[id].patient.res.GetPatient().GetActive().GetValue() {
				active = append(active, id)
			}
		}
		kept = active
	}
	if len(kept) != 1 {
		return persons, false
	}
	return map[string]*person{kept[0]: persons[kept[0]]}, true
}

// survivor follows replaced-by links from p to the record the source kept,
// within the source and at most maxReplacedHops links, reading each under
// the same request (and so the same policy) as p. It returns p itself when
// p was not replaced, or when the record it names cannot be read; hops
// says how many links it followed.
func (s *Service) survivor(ctx context.Context, req Request, src Source, p *person) (*person, int) {
	visited := []string{r4.ID(p.patient.res)}
	hops := 0
	for hops < maxReplacedHops {
		next := replacedBy(p.patient.res)
		if next == "" || slices.Contains(visited, next) {
			break
		}
		srcID, upstream, err := s.decodeID("Patient", next)
		if err != nil || srcID != src.ID() {
			// Another source's record is an MPI link, not a merge the
			// source made: it is found by identifier like any other.
			break
		}
		set, err := s.readMapped(ctx, req, src, "Patient", upstream)
		if err != nil {
			if !errors.Is(err, source.ErrNotFound) {
				s.logger().WarnContext(ctx, "replacing record not read", "error_class", errorClass(err))
			}
			break
		}
		np, ok := personsOf(set.items)[next]
		if !ok {
			break
		}
		p, visited = np, append(visited, next)
		hops++
	}
	return p, hops
}
