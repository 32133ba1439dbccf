package mappings

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ErrInvalidSpec is wrapped by every error Load returns for a broken spec
// file or ConceptMap.
var ErrInvalidSpec = errors.New("invalid mapping spec")

// SpecError is one problem in a spec file, with its position so that a
// person editing the YAML finds it.
type SpecError struct {
	// File is the path of the file inside the spec tree
	// ("de-basis/mapping.yaml").
	File string
	// Line and Column are 1-based; 0 when the problem concerns the file as a
	// whole.
	Line, Column int
	// Msg says what is wrong.
	Msg string
}

func (e *SpecError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
}

// Unwrap makes errors.Is(err, ErrInvalidSpec) hold.
func (e *SpecError) Unwrap() error { return ErrInvalidSpec }

// pos is where a spec item starts. Every item struct embeds it; decodeStrict
// fills it from the YAML node.
type pos struct {
	Line   int `yaml:"-"`
	Column int `yaml:"-"`
}

func (p pos) at(file, format string, args ...any) *SpecError {
	return &SpecError{File: file, Line: p.Line, Column: p.Column, Msg: fmt.Sprintf(format, args...)}
}

// mappingSpec is one mapping.yaml: the shared rules (common/) or a national
// profile's rules. The YAML keys are the names people edit; README.md
// documents each.
type mappingSpec struct {
	pos
	Profile          string                   `yaml:"profile"`
	Title            string                   `yaml:"title"`
	Country          string                   `yaml:"country"`
	Version          string                   `yaml:"version"`
	NationalProfiles []string                 `yaml:"national-profiles"`
	Resources        map[string]*resourceSpec `yaml:"resources"`
	Extensions       []*extensionSpec         `yaml:"extensions"`
	Identifiers      []*identifierSpec        `yaml:"identifiers"`
	Translate        []*translateSpec         `yaml:"translate"`
	CountryMaps      []string                 `yaml:"country-maps"`
	Countries        *countriesSpec           `yaml:"countries"`
	Firewall         []*firewallCodeSpec      `yaml:"firewall-codes"`
	Labels           []*labelSpec             `yaml:"labels"`
	Replace          []*replaceSpec           `yaml:"replace-codes"`
	CodeRules        []*codeRuleSpec          `yaml:"code-rules"`
}

// resourceSpec says how one resource type is mapped.
type resourceSpec struct {
	pos
	// Profile is the MHP profile name (mhp-condition) or "none".
	Profile string `yaml:"profile"`
	// ProfileByCategory picks the MHP profile from the category code
	// (Observation: laboratory -> mhp-observation-lab).
	ProfileByCategory map[string]string `yaml:"profile-by-category"`
	// Required lists elements the MHP profile makes 1..1, with their type,
	// filled with data-absent-reason when the national resource lacks them.
	Required map[string]string `yaml:"required"`
	// Drop lists top-level elements never passed on (minimisation).
	Drop []string `yaml:"drop"`
	// Transforms are named Go transforms run on the whole resource.
	Transforms []string `yaml:"transforms"`
}

// extensionSpec is the rule for one extension URL, wherever it occurs.
type extensionSpec struct {
	pos
	URL       string            `yaml:"url"`
	Action    string            `yaml:"action"`
	To        string            `yaml:"to"`
	Transform string            `yaml:"transform"`
	With      map[string]string `yaml:"with"`
	StatusMap string            `yaml:"status-map"`
	Reason    string            `yaml:"reason"`
}

// identifierSpec is a NamingSystem-like registry entry.
type identifierSpec struct {
	pos
	ID      string       `yaml:"id"`
	Country string       `yaml:"country"`
	Kind    string       `yaml:"kind"`
	Action  string       `yaml:"action"`
	Systems []string     `yaml:"systems"`
	Prefix  string       `yaml:"system-prefix"`
	Types   []codingSpec `yaml:"types"`
	Type    *codingSpec  `yaml:"type"`
	Status  string       `yaml:"status"`
	Reason  string       `yaml:"reason"`
	Use     string       `yaml:"use"`
	// Scope and Partners say how far the identifier may find a person
	// (IdentifierSystem); an empty scope follows kind and action.
	Scope    string   `yaml:"scope"`
	Partners []string `yaml:"partners"`
}

type codingSpec struct {
	pos
	System  string `yaml:"system"`
	Code    string `yaml:"code"`
	Display string `yaml:"display"`
}

// translateSpec adds international codings to CodeableConcepts at a path.
type translateSpec struct {
	pos
	Path string   `yaml:"path"`
	Maps []string `yaml:"maps"`
}

// countriesSpec lists where country codes live (common only).
type countriesSpec struct {
	pos
	Addresses []string `yaml:"addresses"`
	Concepts  []string `yaml:"concepts"`
}

// firewallCodeSpec makes a resource with this code class S.
type firewallCodeSpec struct {
	pos
	Resource  string `yaml:"resource"`
	System    string `yaml:"system"`
	Code      string `yaml:"code"`
	Action    string `yaml:"action"`
	StatusMap string `yaml:"status-map"`
	Reason    string `yaml:"reason"`
}

// labelSpec adds a security label when a coding matches.
type labelSpec struct {
	pos
	System   string     `yaml:"system"`
	Prefixes []string   `yaml:"code-prefixes"`
	Label    codingSpec `yaml:"label"`
	Reason   string     `yaml:"reason"`
}

// replaceSpec replaces a coding that must never be emitted.
type replaceSpec struct {
	pos
	From   codingSpec `yaml:"from"`
	To     codingSpec `yaml:"to"`
	Class  string     `yaml:"class"`
	Reason string     `yaml:"reason"`
}

// registryFile is naming-systems.yaml.
type registryFile struct {
	pos
	Identifiers []*identifierSpec `yaml:"identifiers"`
}

// decodeYAML decodes one YAML document strictly: unknown keys are errors
// with their line, and every struct that embeds pos gets its position.
func decodeYAML(file string, b []byte, out any) error { return decodeYAMLMode(file, b, out, true) }

// decodeYAMLMode is decodeYAML with the unknown-key check optional: FHIR
// JSON files (ConceptMaps) are read with yaml.v3 only for their line
// numbers; r4.Parse checks their structure.
func decodeYAMLMode(file string, b []byte, out any, strict bool) error {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return &SpecError{File: file, Msg: "empty file"}
		}
		return yamlError(file, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return &SpecError{File: file, Line: extra.Line, Column: extra.Column, Msg: "more than one YAML document"}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if strict {
		if err := checkKeys(file, root, reflect.TypeOf(out)); err != nil {
			return err
		}
	}
	if err := root.Decode(out); err != nil {
		return yamlError(file, err)
	}
	fillPos(root, reflect.ValueOf(out))
	return nil
}

// yamlError turns a yaml.v3 error ("yaml: line 4: ...") into a SpecError
// that keeps the line.
func yamlError(file string, err error) error {
	msg := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, tail, ok := strings.Cut(rest, ":"); ok {
			if _, err := fmt.Sscanf(n, "%d", &line); err == nil {
				msg = strings.TrimSpace(tail)
				// yaml.v3 counts from 0 for the parser errors that name
				// what they expected (the line of their context mark).
				if te == nil && strings.HasPrefix(msg, "did not find expected") {
					line++
				}
			}
		}
	}
	return &SpecError{File: file, Line: line, Column: 1, Msg: msg}
}

// checkKeys rejects mapping keys that no yaml tag of the target struct
// names, so that a typo in a spec ("acton: drop") stops Load instead of
// being ignored.
func checkKeys(file string, n *yaml.Node, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return nil // Decode reports the type mismatch with its line.
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			ft, ok := fields[k.Value]
			if !ok {
				names := make([]string, 0, len(fields))
				for name := range fields {
					names = append(names, name)
				}
				sort.Strings(names)
				return &SpecError{File: file, Line: k.Line, Column: k.Column,
					Msg: fmt.Sprintf("unknown key %q (allowed here: %s)", k.Value, strings.Join(names, ", "))}
			}
			if err := checkKeys(file, v, ft); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return nil
		}
		for _, c := range n.Content {
			if err := checkKeys(file, c, t.Elem()); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 1; i < len(n.Content); i += 2 {
			if err := checkKeys(file, n.Content[i], t.Elem()); err != nil {
				return err
			}
		}
	}
	return nil
}

func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		if tag == "-" || f.Anonymous || !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

// fillPos walks the decoded value alongside its node and records where each
// struct embedding pos starts.
func fillPos(n *yaml.Node, v reflect.Value) {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Struct:
		// pos is embedded: its promoted fields are settable.
		if f := v.FieldByName("Line"); f.IsValid() && f.CanSet() && f.Kind() == reflect.Int {
			f.SetInt(int64(n.Line))
			v.FieldByName("Column").SetInt(int64(n.Column))
		}
		if n.Kind != yaml.MappingNode {
			return
		}
		t := v.Type()
		byName := map[string]int{}
		for i := 0; i < t.NumField(); i++ {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
			if name != "" && name != "-" {
				byName[name] = i
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if fi, ok := byName[n.Content[i].Value]; ok {
				fillPos(n.Content[i+1], v.Field(fi))
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i := 0; i < v.Len() && i < len(n.Content); i++ {
			fillPos(n.Content[i], v.Index(i))
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			mv := v.MapIndex(reflect.ValueOf(n.Content[i].Value))
			if mv.IsValid() && mv.Kind() == reflect.Pointer {
				fillPos(n.Content[i+1], mv)
			}
		}
	}
}
