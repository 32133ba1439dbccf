package mappings

import (
	"bufio"
	"bytes"
	"fmt"
	"path"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Code rules translate a national edition of WHO ICD-10 (ICD-10-GM,
// ICD-10-CM, the French CIM-10) into WHO ICD-10 by the structure the
// editions share instead of by a table: a code WHO ICD-10 has (a 3-character
// category or a 4-character subcategory) maps to itself, a national
// subdivision to its nearest WHO ancestor with equivalence wider, and a
// national category WHO does not have to nothing (unmatched). Which codes
// WHO has comes from a code list in common/codelists; a rule may name a
// ConceptMap of exceptions consulted first, for the few codes an edition
// kept but gave another meaning.
//
// A compiled rule is a conceptMap with rule set, so that translate lists
// rules and ConceptMaps alike by id.

const (
	codeListDirName = "codelists"
	sysICD10        = "http://hl7.org/fhir/sid/icd-10"
	// whoICD10List is the code list the ICD-10 rules check against.
	whoICD10List = "icd-10-who"
)

// codeRuleSpec is one entry of code-rules in a mapping.yaml.
type codeRuleSpec struct {
	pos
	// ID names the rule where translate lists maps.
	ID string `yaml:"id"`
	// Rule is the edition: icd-10-gm, icd-10-cm or cim-10.
	Rule string `yaml:"rule"`
	// Source is the code system of the national edition.
	Source string `yaml:"source"`
	// Exceptions is a ConceptMap (same folder or common) consulted before
	// the rule.
	Exceptions string `yaml:"exceptions"`
}

// icdEdition says what a code of one national ICD-10 edition looks like.
type icdEdition struct {
	// pattern matches a code once its markers are removed; a code without
	// the dot ("E119") is accepted where dotless allows it.
	pattern *regexp.Regexp
	// markers are trailing characters that qualify a code without being
	// part of it: the ICD-10 dagger (etiology, written † or +), asterisk
	// (manifestation) and the ICD-10-GM exclamation mark (additional code).
	markers string
	dotless bool
}

var icdEditions = map[string]*icdEdition{
	// BfArM ICD-10-GM: WHO codes plus German fifth characters (E11.90).
	"icd-10-gm": {pattern: regexp.MustCompile(`^[A-Z][0-9]{2}(\.[0-9]{1,2})?$`), markers: "†*!+"},
	// NCHS ICD-10-CM: up to seven characters, letters allowed after the
	// second (Z3A, S72.001A, T81.4XXA).
	"icd-10-cm": {pattern: regexp.MustCompile(`^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$`), dotless: true},
	// ATIH CIM-10: WHO codes plus French fifth and sixth characters, "+"
	// standing for an unused position.
	"cim-10": {pattern: regexp.MustCompile(`^[A-Z][0-9]{2}(\.[0-9+]{1,3})?$`), markers: "†*", dotless: true},
}

// codeList is a set of codes read from common/codelists/<id>.txt: one code
// a line, "#" starts a comment.
type codeList struct {
	id, file string
	codes    map[string]bool
}

func (l *codeList) has(code string) bool { return l.codes[code] }

func loadCodeList(file string, b []byte) (*codeList, error) {
	id := strings.TrimSuffix(path.Base(file), path.Ext(file))
	l := &codeList{id: id, file: file, codes: map[string]bool{}}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.ContainsAny(line, " \t") {
			return nil, &SpecError{File: file, Line: n, Column: 1, Msg: "one code a line"}
		}
		if l.codes[line] {
			return nil, &SpecError{File: file, Line: n, Column: 1, Msg: fmt.Sprintf("code %q listed twice", line)}
		}
		l.codes[line] = true
	}
	if err := sc.Err(); err != nil {
		return nil, &SpecError{File: file, Msg: err.Error()}
	}
	if len(l.codes) == 0 {
		return nil, &SpecError{File: file, Msg: "no codes"}
	}
	return l, nil
}

// codeRule is a compiled code rule.
type codeRule struct {
	source     string
	edition    *icdEdition
	who        *codeList
	exceptions *conceptMap
}

// compileCodeRules registers the code rules of one spec file as maps, so
// that translate can name them. A rule id must not clash with a ConceptMap
// id.
func (t *specTree) compileCodeRules(dir, file string, s *mappingSpec) {
	for _, r := range s.CodeRules {
		ed, ok := icdEditions[r.Rule]
		switch {
		case r.ID == "":
			t.fail(r.at(file, "code rule needs an id"))
			continue
		case !ok:
			t.fail(r.at(file, "code rule %s: unknown rule %q (want icd-10-gm, icd-10-cm or cim-10)", r.ID, r.Rule))
			continue
		case r.Source == "" || !strings.Contains(r.Source, ":"):
			t.fail(r.at(file, "code rule %s needs the absolute url of its source code system", r.ID))
			continue
		}
		if prev, dup := t.maps[r.ID]; dup {
			t.fail(r.at(file, "code rule id %q is already used by %s", r.ID, prev.file))
			continue
		}
		who := t.lists[whoICD10List]
		if who == nil {
			t.fail(r.at(file, "code rule %s needs %s/%s/%s.txt", r.ID, commonDir, codeListDirName, whoICD10List))
			continue
		}
		rule := &codeRule{source: r.Source, edition: ed, who: who}
		if r.Exceptions != "" {
			rule.exceptions = t.mapRef(dir, file, r.pos, r.Exceptions)
			if rule.exceptions != nil {
				if _, covered := rule.exceptions.groups[r.Source]; !covered || len(rule.exceptions.groups) != 1 {
					t.fail(r.at(file, "code rule %s: exceptions %s must have one group, from %s", r.ID, r.Exceptions, r.Source))
				}
			}
		}
		t.maps[r.ID] = &conceptMap{id: r.ID, file: file, rule: rule, groups: map[string][]*cmTable{}}
		t.mapDir[r.ID] = dir
	}
}

// lookup translates one code of the edition: the exceptions first, then the
// nearest code WHO ICD-10 has. A code the edition cannot have is covered
// but unknown (no translations), so that the caller reports it.
func (r *codeRule) lookup(system, code string) ([]translation, bool) {
	if system != r.source {
		return nil, false
	}
	norm, ok := r.edition.normalise(code)
	if !ok {
		return nil, true
	}
	for c := norm; len(c) >= 3; c = icdParent(c) {
		if trs := r.exception(system, c, c == norm); len(trs) > 0 {
			return trs, true
		}
		if r.who.has(c) {
			eq := "wider"
			if c == norm {
				eq = "equivalent"
			}
			return []translation{{system: sysICD10, code: c, equivalence: eq}}, true
		}
	}
	return []translation{{system: sysICD10, equivalence: "unmatched"}}, true
}

// exception returns the exceptions' translations of code, which is the
// national code itself (self) or one of its ancestors: what holds for an
// ancestor is wider for its descendants.
func (r *codeRule) exception(system, code string, self bool) []translation {
	if r.exceptions == nil {
		return nil
	}
	trs, _ := r.exceptions.lookup(system, code)
	if self || len(trs) == 0 {
		return trs
	}
	out := make([]translation, len(trs))
	for i, tr := range trs {
		out[i] = tr
		if !tr.none() {
			out[i].equivalence = "wider"
		}
	}
	return out
}

// normalise removes trailing markers, checks the code against the
// edition's pattern and writes it with a dot after the category.
func (ed *icdEdition) normalise(code string) (string, bool) {
	code = strings.TrimSpace(code)
	for code != "" {
		r, size := utf8.DecodeLastRuneInString(code)
		if !strings.ContainsRune(ed.markers, r) {
			break
		}
		code = code[:len(code)-size]
	}
	if ed.dotless && len(code) > 3 && !strings.Contains(code, ".") {
		code = code[:3] + "." + code[3:]
	}
	if !ed.pattern.MatchString(code) {
		return "", false
	}
	return code, true
}

// icdParent is the code one level up: E11.90 -> E11.9 -> E11.
func icdParent(c string) string {
	c = c[:len(c)-1]
	return strings.TrimSuffix(c, ".")
}
