package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// plan is the compiled form of every MHP StructureDefinition and ValueSet.
type plan struct {
	profiles   map[string]*profile  // resource profiles and extensions, by URL
	extensions map[string]*profile  // extension definitions, by URL
	valueSets  map[string]*valueSet // by URL
	// typed lists the resource types that have at least one MHP profile.
	typed map[string]bool
}

type profile struct {
	url  string
	typ  string // resource type, or "Extension"
	root *element
}

// element is one node of a profile's element tree. Elements the
// differential does not mention exist only as parents of those it does.
type element struct {
	id        string // ElementDefinition.id, "Patient.identifier:mpi.system"
	name      string // last path segment, "value[x]"
	sliceName string

	min, max int // max < 0: unbounded; min/max < 0 when not constrained
	hasMin   bool
	hasMax   bool

	fixed   any
	pattern any
	vs      *valueSet // required binding

	types    []string // allowed type codes, nil: any
	profiles []string // type.profile: extension URL or resource profile

	invariants []invariant

	slicing  *slicing
	children []*element
	slices   []*element
	matcher  func(any) bool // set on slices: does an item belong here?
}

type slicing struct {
	discriminators []discriminator
	closed         bool
}

type discriminator struct {
	kind string // value, pattern, type
	path string
}

type invariant struct {
	key      string
	human    string
	severity Severity
	check    invariantFunc
}

type valueSet struct {
	url   string
	codes map[string]bool // "system|code"
	bare  map[string]bool // code alone, for code-typed elements
}

func (vs *valueSet) hasCoding(system, code string) bool { return vs.codes[system+"|"+code] }
func (vs *valueSet) hasCode(code string) bool           { return vs.bare[code] }

// sdJSON is the part of a StructureDefinition the checker reads.
type sdJSON struct {
	URL          string `json:"url"`
	Type         string `json:"type"`
	Differential struct {
		Element []map[string]json.RawMessage `json:"element"`
	} `json:"differential"`
}

type vsJSON struct {
	URL     string `json:"url"`
	Compose struct {
		Include []struct {
			System  string `json:"system"`
			Concept []struct {
				Code string `json:"code"`
			} `json:"concept"`
		} `json:"include"`
	} `json:"compose"`
}

type csJSON struct {
	URL     string `json:"url"`
	Concept []struct {
		Code string `json:"code"`
	} `json:"concept"`
}

func compile() (*plan, error) {
	idx := loadArtifacts()
	if idx.err != nil {
		return nil, idx.err
	}
	p := &plan{
		profiles:   map[string]*profile{},
		extensions: map[string]*profile{},
		valueSets:  map[string]*valueSet{},
		typed:      map[string]bool{},
	}
	codeSystems := map[string][]string{}
	for _, a := range idx.all {
		if a.ResourceType != "CodeSystem" {
			continue
		}
		var cs csJSON
		if err := json.Unmarshal(a.JSON, &cs); err != nil {
			return nil, fmt.Errorf("conformance: %s: %w", a.File, err)
		}
		for _, c := range cs.Concept {
			codeSystems[cs.URL] = append(codeSystems[cs.URL], c.Code)
		}
	}
	for _, a := range idx.all {
		if a.ResourceType != "ValueSet" {
			continue
		}
		var v vsJSON
		if err := json.Unmarshal(a.JSON, &v); err != nil {
			return nil, fmt.Errorf("conformance: %s: %w", a.File, err)
		}
		vs := &valueSet{url: v.URL, codes: map[string]bool{}, bare: map[string]bool{}}
		for _, inc := range v.Compose.Include {
			codes := make([]string, 0, len(inc.Concept))
			for _, c := range inc.Concept {
				codes = append(codes, c.Code)
			}
			if len(inc.Concept) == 0 {
				all, ok := codeSystems[inc.System]
				if !ok {
					return nil, fmt.Errorf("conformance: %s: includes all of %s, which is not shipped", a.File, inc.System)
				}
				codes = all
			}
			for _, c := range codes {
				vs.codes[inc.System+"|"+c] = true
				vs.bare[c] = true
			}
		}
		p.valueSets[v.URL] = vs
	}
	for _, a := range idx.all {
		if a.ResourceType != "StructureDefinition" {
			continue
		}
		pr, err := p.compileSD(a)
		if err != nil {
			return nil, fmt.Errorf("conformance: %s: %w", a.File, err)
		}
		p.profiles[pr.url] = pr
		if pr.typ == "Extension" {
			p.extensions[pr.url] = pr
		} else {
			p.typed[pr.typ] = true
		}
	}
	// Slice matchers need every element of the slice in place, so they are
	// built after the whole tree.
	for _, pr := range p.profiles {
		if err := buildMatchers(pr.root); err != nil {
			return nil, fmt.Errorf("conformance: %s: %w", pr.url, err)
		}
	}
	return p, nil
}

func (p *plan) compileSD(a ArtifactFile) (*profile, error) {
	var sd sdJSON
	if err := json.Unmarshal(a.JSON, &sd); err != nil {
		return nil, err
	}
	pr := &profile{url: sd.URL, typ: sd.Type, root: &element{id: sd.Type, name: sd.Type, min: -1, max: -1}}
	for _, raw := range sd.Differential.Element {
		var id, pth string
		if err := unmarshalField(raw, "path", &pth); err != nil || pth == "" {
			return nil, fmt.Errorf("element without a path")
		}
		_ = unmarshalField(raw, "id", &id)
		if id == "" {
			id = pth
		}
		e, err := pr.root.find(id)
		if err != nil {
			return nil, err
		}
		if err := p.fill(e, raw); err != nil {
			return nil, fmt.Errorf("element %s: %w", id, err)
		}
	}
	return pr, nil
}

// find walks (and grows) the tree to the element with the given id.
func (root *element) find(id string) (*element, error) {
	segs := strings.Split(id, ".")
	if segs[0] != root.name {
		return nil, fmt.Errorf("element %s is not under %s", id, root.name)
	}
	node := root
	for _, seg := range segs[1:] {
		name, slice, _ := strings.Cut(seg, ":")
		if name == "" {
			return nil, fmt.Errorf("element %s: empty path segment", id)
		}
		var child *element
		for _, c := range node.children {
			if c.name == name {
				child = c
				break
			}
		}
		if child == nil {
			child = &element{id: node.id + "." + name, name: name, min: -1, max: -1}
			node.children = append(node.children, child)
		}
		node = child
		if slice == "" {
			continue
		}
		var s *element
		for _, c := range node.slices {
			if c.sliceName == slice {
				s = c
				break
			}
		}
		if s == nil {
			s = &element{id: node.id + ":" + slice, name: name, sliceName: slice, min: -1, max: -1}
			node.slices = append(node.slices, s)
		}
		node = s
	}
	return node, nil
}

func unmarshalField(raw map[string]json.RawMessage, key string, v any) error {
	b, ok := raw[key]
	if !ok {
		return nil
	}
	return json.Unmarshal(b, v)
}

func decodeValue(b json.RawMessage) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

func (p *plan) fill(e *element, raw map[string]json.RawMessage) error {
	var minV *int
	var maxV *string
	if err := unmarshalField(raw, "min", &minV); err != nil {
		return err
	}
	if err := unmarshalField(raw, "max", &maxV); err != nil {
		return err
	}
	if minV != nil {
		e.min, e.hasMin = *minV, true
	}
	if maxV != nil {
		e.hasMax = true
		if *maxV == "*" {
			e.max = -1
		} else {
			n, err := strconv.Atoi(*maxV)
			if err != nil {
				return fmt.Errorf("max %q", *maxV)
			}
			e.max = n
		}
	}
	for key, b := range raw {
		switch {
		case strings.HasPrefix(key, "fixed"):
			v, err := decodeValue(b)
			if err != nil {
				return err
			}
			e.fixed = v
		case strings.HasPrefix(key, "pattern"):
			v, err := decodeValue(b)
			if err != nil {
				return err
			}
			e.pattern = v
		}
	}
	var types []struct {
		Code    string   `json:"code"`
		Profile []string `json:"profile"`
	}
	if err := unmarshalField(raw, "type", &types); err != nil {
		return err
	}
	for _, t := range types {
		e.types = append(e.types, t.Code)
		e.profiles = append(e.profiles, t.Profile...)
	}
	var binding *struct {
		Strength string `json:"strength"`
		ValueSet string `json:"valueSet"`
	}
	if err := unmarshalField(raw, "binding", &binding); err != nil {
		return err
	}
	if binding != nil && binding.Strength == "required" {
		url, _, _ := strings.Cut(binding.ValueSet, "|")
		vs, ok := p.valueSets[url]
		if !ok {
			return fmt.Errorf("required binding to %s, which is not shipped", url)
		}
		e.vs = vs
	}
	var sl *struct {
		Discriminator []discriminator `json:"-"`
		Raw           []struct {
			Type string `json:"type"`
			Path string `json:"path"`
		} `json:"discriminator"`
		Rules string `json:"rules"`
	}
	if err := unmarshalField(raw, "slicing", &sl); err != nil {
		return err
	}
	if sl != nil {
		e.slicing = &slicing{closed: sl.Rules == "closed"}
		for _, d := range sl.Raw {
			switch d.Type {
			case "value", "pattern", "type":
			default:
				return fmt.Errorf("slicing discriminator type %q is not supported", d.Type)
			}
			e.slicing.discriminators = append(e.slicing.discriminators, discriminator{kind: d.Type, path: d.Path})
		}
	}
	var constraints []struct {
		Key      string `json:"key"`
		Severity string `json:"severity"`
		Human    string `json:"human"`
	}
	if err := unmarshalField(raw, "constraint", &constraints); err != nil {
		return err
	}
	for _, c := range constraints {
		fn, ok := invariants[c.Key]
		if !ok {
			// An invariant the checker cannot evaluate would be silently
			// ignored; refuse the artifact instead.
			return fmt.Errorf("invariant %s has no implementation", c.Key)
		}
		sev := SeverityError
		if c.Severity == "warning" {
			sev = SeverityWarning
		}
		e.invariants = append(e.invariants, invariant{key: c.Key, human: c.Human, severity: sev, check: fn})
	}
	return nil
}

// buildMatchers gives every slice a function that says whether a repetition
// of the sliced element belongs to it, from the slicing discriminators.
func buildMatchers(e *element) error {
	for _, c := range e.children {
		if err := buildMatchers(c); err != nil {
			return err
		}
	}
	for _, s := range e.slices {
		if err := buildMatchers(s); err != nil {
			return err
		}
	}
	if len(e.slices) == 0 {
		return nil
	}
	if e.slicing == nil || len(e.slicing.discriminators) == 0 {
		return fmt.Errorf("%s has slices but no slicing discriminator", e.id)
	}
	for _, s := range e.slices {
		var parts []func(any) bool
		for _, d := range e.slicing.discriminators {
			m, err := discriminatorMatcher(s, d)
			if err != nil {
				return fmt.Errorf("slice %s: %w", s.id, err)
			}
			parts = append(parts, m)
		}
		s.matcher = func(v any) bool {
			for _, m := range parts {
				if !m(v) {
					return false
				}
			}
			return true
		}
	}
	return nil
}

func discriminatorMatcher(s *element, d discriminator) (func(any) bool, error) {
	target := s
	var steps []string
	if d.path != "$this" {
		steps = strings.Split(d.path, ".")
		for _, step := range steps {
			var next *element
			for _, c := range target.children {
				if c.name == step {
					next = c
				}
			}
			if next == nil {
				// An extension slice names its URL through type.profile
				// rather than a fixed url child.
				if d.path == "url" && len(s.profiles) > 0 {
					url := s.profiles[0]
					return func(v any) bool {
						obj, _ := v.(map[string]any)
						u, _ := obj["url"].(string)
						return u == url
					}, nil
				}
				return nil, fmt.Errorf("discriminator path %s is not constrained in the slice", d.path)
			}
			target = next
		}
	}
	switch d.kind {
	case "type":
		if len(target.types) != 1 {
			return nil, fmt.Errorf("type discriminator needs exactly one type on %s", target.id)
		}
		want := target.types[0]
		return func(v any) bool {
			for _, x := range follow(v, steps) {
				obj, _ := x.(map[string]any)
				if rt, _ := obj["resourceType"].(string); rt == want {
					return true
				}
			}
			return false
		}, nil
	default: // value, pattern
		switch {
		case target.fixed != nil:
			want := target.fixed
			return func(v any) bool {
				for _, x := range follow(v, steps) {
					if jsonEqual(x, want) {
						return true
					}
				}
				return false
			}, nil
		case target.pattern != nil:
			want := target.pattern
			return func(v any) bool {
				for _, x := range follow(v, steps) {
					if jsonMatches(x, want) {
						return true
					}
				}
				return false
			}, nil
		case target.vs != nil && d.kind == "value":
			vs := target.vs
			return func(v any) bool {
				for _, x := range follow(v, steps) {
					if inValueSet(vs, x) {
						return true
					}
				}
				return false
			}, nil
		}
		return nil, fmt.Errorf("discriminator %s: %s has no fixed value, pattern or required binding", d.path, target.id)
	}
}

// follow returns the values at a dotted path below v, flattening arrays.
func follow(v any, steps []string) []any {
	cur := []any{v}
	for _, s := range steps {
		var next []any
		for _, c := range cur {
			obj, ok := c.(map[string]any)
			if !ok {
				continue
			}
			switch x := obj[s].(type) {
			case nil:
			case []any:
				next = append(next, x...)
			default:
				next = append(next, x)
			}
		}
		cur = next
	}
	return cur
}
