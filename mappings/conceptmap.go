package mappings

import (
	"fmt"
	"strings"

	"github.com/migrant-health/mhg/conformance/r4"
)

// cmFile is the part of a FHIR ConceptMap the engine reads. The file is
// validated as R4 by r4.Parse first; yaml.v3 reads it again (JSON is YAML)
// so that every element keeps its line for error messages.
type cmFile struct {
	pos
	ResourceType string     `yaml:"resourceType"`
	ID           string     `yaml:"id"`
	URL          string     `yaml:"url"`
	Version      string     `yaml:"version"`
	Experimental bool       `yaml:"experimental"`
	Group        []*cmGroup `yaml:"group"`
}

type cmGroup struct {
	pos
	Source  string       `yaml:"source"`
	Target  string       `yaml:"target"`
	Element []*cmElement `yaml:"element"`
}

type cmElement struct {
	pos
	Code    string      `yaml:"code"`
	Display string      `yaml:"display"`
	Target  []*cmTarget `yaml:"target"`
}

type cmTarget struct {
	pos
	Code        string `yaml:"code"`
	Display     string `yaml:"display"`
	Equivalence string `yaml:"equivalence"`
	Comment     string `yaml:"comment"`
}

// conceptMap is a compiled ConceptMap: for each source system, the codes
// and what they translate to.
type conceptMap struct {
	id, url, file string
	// groups is keyed by source system.
	groups map[string][]*cmTable
	// demo marks a ConceptMap published as experimental: a demonstration
	// table, not a published mapping. What it adds is reported as such.
	demo bool
	// rule, when set, translates instead of groups (coderules.go).
	rule *codeRule
}

// kind names what translates in the loss report.
func (cm *conceptMap) kind() string {
	if cm.rule != nil {
		return "code rule"
	}
	return "ConceptMap"
}

type cmTable struct {
	source, target string
	codes          map[string][]translation
}

// translation is one target of a source code.
type translation struct {
	system, code, display string
	// equivalence is the R4 ConceptMapEquivalence: equivalent and equal
	// translate silently; wider, narrower, inexact, ... translate with an
	// information issue; unmatched and disjoint record that no target exists.
	equivalence string
	// illustrative marks an entry whose comment says its code is
	// illustrative (not checked against the published table).
	illustrative bool
}

// exact reports whether the translation means the same as the source.
func (t translation) exact() bool {
	return t.equivalence == "equivalent" || t.equivalence == "equal"
}

// none reports whether the entry says there is no target.
func (t translation) none() bool {
	return t.equivalence == "unmatched" || t.equivalence == "disjoint"
}

// loadConceptMap parses and compiles one ConceptMap file. A ConceptMap that
// lists a source code twice, or maps one code to two different codes of the
// same target system as equivalent, contradicts itself and is an error.
func loadConceptMap(file string, b []byte) (*conceptMap, error) {
	if _, err := r4.Parse(b); err != nil {
		return nil, &SpecError{File: file, Msg: fmt.Sprintf("not a valid R4 ConceptMap: %v", err)}
	}
	var f cmFile
	if err := decodeYAMLMode(file, b, &f, false); err != nil {
		return nil, err
	}
	if f.ResourceType != "ConceptMap" {
		return nil, f.at(file, "resourceType is %q, want ConceptMap", f.ResourceType)
	}
	if f.ID == "" {
		return nil, f.at(file, "ConceptMap has no id: specs refer to ConceptMaps by id")
	}
	cm := &conceptMap{id: f.ID, url: f.URL, file: file, groups: map[string][]*cmTable{}, demo: f.Experimental}
	for _, g := range f.Group {
		if g.Source == "" || g.Target == "" {
			return nil, g.at(file, "group needs both source and target systems")
		}
		t := &cmTable{source: g.Source, target: g.Target, codes: map[string][]translation{}}
		seen := map[string]int{}
		for _, el := range g.Element {
			if el.Code == "" {
				return nil, el.at(file, "element without code")
			}
			if line, dup := seen[el.Code]; dup {
				return nil, el.at(file, "source code listed twice in one group (first at line %d): contradictory", line)
			}
			seen[el.Code] = el.Line
			if len(el.Target) == 0 {
				return nil, el.at(file, "element without target: say equivalence unmatched when no target exists")
			}
			var exactCode string
			for _, tg := range el.Target {
				tr := translation{system: g.Target, code: tg.Code, display: tg.Display, equivalence: tg.Equivalence,
					illustrative: strings.HasPrefix(strings.ToLower(tg.Comment), "illustrative")}
				if tr.equivalence == "" {
					return nil, tg.at(file, "target without equivalence")
				}
				if !tr.none() && tr.code == "" {
					return nil, tg.at(file, "target with equivalence %s needs a code", tr.equivalence)
				}
				if tr.exact() {
					if exactCode != "" && exactCode != tr.code {
						return nil, tg.at(file, "one source code is equivalent to two different target codes: contradictory")
					}
					exactCode = tr.code
				}
				t.codes[el.Code] = append(t.codes[el.Code], tr)
			}
		}
		cm.groups[g.Source] = append(cm.groups[g.Source], t)
	}
	return cm, nil
}

// lookup returns the translations of (system, code) and whether the map
// covers the system at all (so that "covered system, unknown code" can be
// told from "not this map's business").
func (cm *conceptMap) lookup(system, code string) (out []translation, covered bool) {
	if cm.rule != nil {
		return cm.rule.lookup(system, code)
	}
	for _, t := range cm.groups[system] {
		covered = true
		out = append(out, t.codes[code]...)
	}
	return out, covered
}
