package mappings

import (
	"fmt"
	"slices"
	"strings"
)

// Selection names the top-level elements of a main output that a caller
// reads (statistics read a Patient's gender and birthDate, nothing else),
// so that MapSelected can leave the rest of the input undecoded and
// unmapped. Make one with Select and reuse it.
type Selection struct {
	names []string
	// all: some selected element depends on the whole resource.
	all bool
}

// wholeResource are elements whose output depends on more than the input
// elements of the same name: extension collects the Patient extensions
// that transforms anywhere in the resource add, meta the security labels
// that codes anywhere call for.
var wholeResource = []string{"extension", "modifierExtension", "meta"}

// Select returns the Selection of the named elements. A choice element is
// named by its stem (deceased for deceasedBoolean); a leading _ is
// ignored. A name selects every member it begins, so a name that begins
// extension or meta selects the whole resource.
func Select(elements ...string) *Selection {
	s := &Selection{}
	for _, e := range elements {
		e = strings.TrimPrefix(e, "_")
		if slices.ContainsFunc(wholeResource, func(w string) bool { return strings.HasPrefix(w, e) }) {
			s.all = true
		}
		if !slices.Contains(s.names, e) {
			s.names = append(s.names, e)
		}
	}
	return s
}

// has says whether a member of a resource belongs to a selected element:
// the element itself, its primitive extensions (_birthDate) and, for a
// choice stem, every member it begins (what the measures' criteria find by
// the stem, and what the mapping's required-element check looks at).
func (s *Selection) has(key string) bool {
	k := strings.TrimPrefix(key, "_")
	for _, n := range s.names {
		if strings.HasPrefix(k, n) {
			return true
		}
	}
	return false
}

// alwaysRead are the members read whatever the selection: what says which
// resource and which rules it is, what can make the whole mapping fail
// (an unknown modifier extension), and contained resources, whose fate
// changes references elsewhere.
var alwaysRead = map[string]bool{"resourceType": true, "id": true, "modifierExtension": true, "contained": true}

// MapSelected maps one national resource as Map does with Options.Tree and
// returns the selected elements of the main output (see Selection.has),
// with its resourceType and id: each exactly as Map's output has it. It
// fails exactly when Map fails. Input elements no selected output element
// depends on are neither decoded nor mapped, which is the point: a
// statistic that reads two elements of every Patient pays for two.
// Options.Withheld is never called, and the outputs split out of the
// resource (the migration-context of a Patient), the data class and the
// loss report are not given: a caller that needs them calls Map.
//
// Where the selection cannot be honoured element by element (extension or
// meta selected, a resource type whose rules read one element to write
// another: resource transforms, class S Observations turned into a
// migration-context), the whole resource is mapped and the selected
// elements returned.
func (e *Engine) MapSelected(profile string, in []byte, opts Options, sel *Selection) (map[string]any, error) {
	p, ok := e.plans[profile]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownProfile, profile)
	}
	opts.Tree, opts.Withheld = true, nil
	keep := func(k string) bool { return alwaysRead[k] || sel.has(k) }
	if sel.all {
		keep = func(string) bool { return true }
	}
	root, err := readFields(in, keep)
	if err != nil {
		// Not read: Map's decoding says whether, and why, it fails.
		if root, err = decodeObject(in); err != nil {
			return nil, fmt.Errorf("%w: input is not a JSON object: %v", ErrNotMappable, err)
		}
	} else if typ := getStr(root, "resourceType"); !sel.all && (typ == "Observation" || p.resources[typ] != nil && len(p.resources[typ].transforms) > 0) {
		if root, err = decodeObject(in); err != nil {
			return nil, fmt.Errorf("%w: input is not a JSON object: %v", ErrNotMappable, err)
		}
	}
	res, err := p.mapResource(root, opts, sel)
	if err != nil {
		return nil, err
	}
	out := res.Outputs[0].Tree
	for k := range out {
		if k != "resourceType" && k != "id" && !sel.has(k) {
			delete(out, k)
		}
	}
	return out, nil
}
