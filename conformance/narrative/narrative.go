package narrative

import (
	"embed"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strings"
)

//go:embed phrases/*.json
var phraseFS embed.FS

// Default is the language used when negotiation finds nothing better.
const Default = "en"

// tables maps a language to its phrases; loaded once, read-only after.
var tables, loadErr = load()

func load() (map[string]map[string]string, error) {
	files, err := phraseFS.ReadDir("phrases")
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]string{}
	for _, f := range files {
		b, err := phraseFS.ReadFile(path.Join("phrases", f.Name()))
		if err != nil {
			return nil, err
		}
		m := map[string]string{}
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("narrative: phrases/%s: %w", f.Name(), err)
		}
		out[strings.TrimSuffix(f.Name(), ".json")] = m
	}
	if _, ok := out[Default]; !ok {
		return nil, fmt.Errorf("narrative: phrases/%s.json is missing", Default)
	}
	return out, nil
}

// Languages lists the languages with phrases: English first, then the
// others in alphabetical order.
func Languages() []string {
	out := []string{}
	for l := range tables {
		if l != Default {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return append([]string{Default}, out...)
}

// Phrases are the fixed phrases of one language.
type Phrases struct {
	lang string
	m    map[string]string
}

// For returns the phrases of lang, or English for a language without
// phrases.
func For(lang string) Phrases {
	if m, ok := tables[lang]; ok {
		return Phrases{lang: lang, m: m}
	}
	return Phrases{lang: Default, m: tables[Default]}
}

// Lang is the BCP-47 code of the phrases' language.
func (p Phrases) Lang() string { return p.lang }

// Text returns the phrase for key with its {placeholders} filled from
// args, given as name, value pairs. A key the language lacks falls back to
// English, and a key nobody has comes back as itself, so a missing
// translation shows rather than breaks the narrative.
func (p Phrases) Text(key string, args ...string) string {
	s, ok := p.m[key]
	if !ok {
		if s, ok = tables[Default][key]; !ok {
			s = key
		}
	}
	if len(args) == 0 {
		return s
	}
	pairs := make([]string, 0, len(args))
	for i := 0; i+1 < len(args); i += 2 {
		pairs = append(pairs, "{"+args[i]+"}", args[i+1])
	}
	return strings.NewReplacer(pairs...).Replace(s)
}

// Has reports whether the language (or English) has a phrase for key.
func (p Phrases) Has(key string) bool {
	if _, ok := p.m[key]; ok {
		return true
	}
	_, ok := tables[Default][key]
	return ok
}
