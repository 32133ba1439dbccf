package conformance

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the generated tables in README.md")

const (
	readmeBegin = "<!-- BEGIN GENERATED TABLES: go test ./conformance -run TestReadme -update -->"
	readmeEnd   = "<!-- END GENERATED TABLES -->"
)

// The profile tables in README.md are generated from the embedded JSON, so
// they cannot drift from it: this test fails when they differ and rewrites
// them with -update.
func TestReadmeTablesMatchArtifacts(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	begin := bytes.Index(readme, []byte(readmeBegin))
	end := bytes.Index(readme, []byte(readmeEnd))
	if begin < 0 || end < begin {
		t.Fatalf("README.md lacks the generated-table markers")
	}
	want := renderTables(t)
	got := string(readme[begin+len(readmeBegin) : end])
	if got == want {
		return
	}
	if !*update {
		t.Fatalf("README.md tables are out of date: run go test ./conformance -run TestReadme -update")
	}
	var out bytes.Buffer
	out.Write(readme[:begin+len(readmeBegin)])
	out.WriteString(want)
	out.Write(readme[end:])
	if err := os.WriteFile("README.md", out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Every MHP URL the README names is shipped (or is one of the few
// non-artifact URLs under the base).
func TestReadmeURLsExist(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	notArtifacts := map[string]bool{Canonical: true, SIDGatewayPseudonym: true}
	re := regexp.MustCompile(regexp.QuoteMeta(Canonical) + `[A-Za-z0-9/_.\-]*`)
	urls := re.FindAllString(string(readme), -1)
	if len(urls) == 0 {
		t.Fatal("README names no MHP URL")
	}
	for _, u := range urls {
		u = strings.TrimRight(u, ".")
		if notArtifacts[u] || strings.HasPrefix(u, Canonical+"/mapping/") || strings.HasPrefix(u, Canonical+"/data-class") {
			continue
		}
		if _, ok := Artifact(u); !ok {
			t.Errorf("README names %s, which is not shipped", u)
		}
	}
	for _, a := range StructureDefinitions() {
		if !bytes.Contains(readme, []byte(a.URL)) {
			t.Errorf("README does not document %s", a.URL)
		}
	}
}

type edJSON struct {
	ID          string `json:"id"`
	Short       string `json:"short"`
	Comment     string `json:"comment"`
	Min         *int   `json:"min"`
	Max         string `json:"max"`
	MustSupport bool   `json:"mustSupport"`
	Type        []struct {
		Code          string   `json:"code"`
		Profile       []string `json:"profile"`
		TargetProfile []string `json:"targetProfile"`
	} `json:"type"`
	Binding *struct {
		Strength string `json:"strength"`
		ValueSet string `json:"valueSet"`
	} `json:"binding"`
	Slicing *struct {
		Discriminator []struct {
			Type string `json:"type"`
			Path string `json:"path"`
		} `json:"discriminator"`
		Rules string `json:"rules"`
	} `json:"slicing"`
	Constraint []struct {
		Key      string `json:"key"`
		Severity string `json:"severity"`
		Human    string `json:"human"`
	} `json:"constraint"`
	Mapping []struct {
		Identity string `json:"identity"`
		Map      string `json:"map"`
	} `json:"mapping"`
	raw map[string]json.RawMessage
}

func shortURL(u string) string {
	if i := strings.LastIndex(u, "/"); i >= 0 {
		return u[i+1:]
	}
	return u
}

func renderValue(raw json.RawMessage) string {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return string(raw)
	}
	var codings []string
	var walk func(any)
	walk = func(x any) {
		switch y := x.(type) {
		case map[string]any:
			if c, ok := y["code"].(string); ok {
				s, _ := y["system"].(string)
				codings = append(codings, shortURL(s)+"#"+c)
				return
			}
			for _, k := range sortedKeys(y) {
				walk(y[k])
			}
		case []any:
			for _, z := range y {
				walk(z)
			}
		}
	}
	if s, ok := v.(string); ok {
		return "`" + s + "`"
	}
	walk(v)
	return "`" + strings.Join(codings, "`, `") + "`"
}

func cell(s string) string {
	return strings.NewReplacer("|", "\\|", "\n", " ").Replace(s)
}

func renderTables(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("\n")
	sds := StructureDefinitions()
	sort.SliceStable(sds, func(i, j int) bool { return sdOrder(sds[i].ID) < sdOrder(sds[j].ID) })
	b.WriteString("### Profiles and extensions\n\n")
	for _, a := range sds {
		var sd struct {
			Name, Title, Type, BaseDefinition, Description, Kind string
			Differential                                         struct {
				Element []json.RawMessage `json:"element"`
			} `json:"differential"`
		}
		if err := json.Unmarshal(a.JSON, &sd); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "#### %s (%s)\n\n", a.ID, sd.Title)
		fmt.Fprintf(&b, "`%s` on %s, derived from `%s`. %s\n\n", a.URL, sd.Type, sd.BaseDefinition, sd.Description)
		hasClass := false
		var rows []edJSON
		for _, raw := range sd.Differential.Element {
			var e edJSON
			if err := json.Unmarshal(raw, &e); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(raw, &e.raw); err != nil {
				t.Fatal(err)
			}
			if len(e.Mapping) > 0 {
				hasClass = true
			}
			rows = append(rows, e)
		}
		if hasClass {
			b.WriteString("| Element | Card. | MS | Type, binding, fixed or pattern | Class | Notes |\n|---|---|---|---|---|---|\n")
		} else {
			b.WriteString("| Element | Card. | MS | Type, binding, fixed or pattern | Notes |\n|---|---|---|---|---|\n")
		}
		for _, e := range rows {
			card := ""
			switch {
			case e.Min != nil && e.Max != "":
				card = fmt.Sprintf("%d..%s", *e.Min, e.Max)
			case e.Min != nil:
				card = fmt.Sprintf("%d.. (base max)", *e.Min)
			case e.Max != "":
				card = "(base min).." + e.Max
			}
			ms := ""
			if e.MustSupport {
				ms = "MS"
			}
			var what []string
			for _, ty := range e.Type {
				s := ty.Code
				if len(ty.Profile) > 0 {
					var ps []string
					for _, p := range ty.Profile {
						ps = append(ps, shortURL(p))
					}
					s += "(" + strings.Join(ps, ", ") + ")"
				}
				if len(ty.TargetProfile) > 0 {
					var ps []string
					for _, p := range ty.TargetProfile {
						ps = append(ps, shortURL(p))
					}
					s += "(" + strings.Join(ps, " \\| ") + ")"
				}
				what = append(what, s)
			}
			for _, k := range sortedRawKeys(e.raw) {
				if strings.HasPrefix(k, "fixed") {
					what = append(what, "fixed "+renderValue(e.raw[k]))
				}
				if strings.HasPrefix(k, "pattern") {
					what = append(what, "pattern "+renderValue(e.raw[k]))
				}
			}
			if e.Binding != nil {
				what = append(what, e.Binding.Strength+": "+shortURL(e.Binding.ValueSet))
			}
			if e.Slicing != nil {
				var ds []string
				for _, d := range e.Slicing.Discriminator {
					ds = append(ds, d.Type+" "+d.Path)
				}
				what = append(what, "sliced by "+strings.Join(ds, ", ")+" ("+e.Slicing.Rules+")")
			}
			var notes []string
			if e.Short != "" {
				notes = append(notes, e.Short)
			}
			if e.Comment != "" {
				notes = append(notes, e.Comment)
			}
			for _, c := range e.Constraint {
				notes = append(notes, fmt.Sprintf("**%s** (%s): %s", c.Key, c.Severity, c.Human))
			}
			class := ""
			for _, m := range e.Mapping {
				if m.Identity == "mhp-class" {
					class = m.Map
				}
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |", e.ID, card, ms, cell(strings.Join(what, "; ")))
			if hasClass {
				fmt.Fprintf(&b, " %s |", class)
			}
			fmt.Fprintf(&b, " %s |\n", cell(strings.Join(notes, " · ")))
		}
		b.WriteString("\n")
	}

	b.WriteString("### Code systems\n\n")
	for _, a := range CodeSystems() {
		var cs struct {
			Title, Description string
			Concept            []struct{ Code, Display, Definition string }
		}
		if err := json.Unmarshal(a.JSON, &cs); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "#### %s (%s)\n\n`%s`. %s\n\n| Code | Display | Definition |\n|---|---|---|\n", a.ID, cs.Title, a.URL, cs.Description)
		for _, c := range cs.Concept {
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", c.Code, cell(c.Display), cell(c.Definition))
		}
		b.WriteString("\n")
	}

	b.WriteString("### Value sets\n\n| ValueSet | URL | Content |\n|---|---|---|\n")
	for _, a := range ValueSets() {
		var vs vsJSON
		if err := json.Unmarshal(a.JSON, &vs); err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, inc := range vs.Compose.Include {
			switch n := len(inc.Concept); {
			case n == 0:
				parts = append(parts, "all of `"+inc.System+"`")
			case n > 10:
				parts = append(parts, fmt.Sprintf("%d codes of `%s` (see profiles/iso3166-1.csv)", n, inc.System))
			default:
				var cs []string
				for _, c := range inc.Concept {
					cs = append(cs, c.Code)
				}
				parts = append(parts, "`"+inc.System+"`: "+strings.Join(cs, ", "))
			}
		}
		fmt.Fprintf(&b, "| %s | `%s` | %s |\n", a.ID, a.URL, cell(strings.Join(parts, "; ")))
	}
	b.WriteString("\n### Operations\n\n")
	for _, a := range OperationDefinitions() {
		var op struct {
			Code, Description, Base string
			Resource                []string
			System, Type, Instance  bool
			Parameter               []struct {
				Name, Use, Max, Type, Documentation string
				Min                                 int
			}
		}
		if err := json.Unmarshal(a.JSON, &op); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "#### $%s\n\n`%s`", op.Code, a.URL)
		if op.Base != "" {
			fmt.Fprintf(&b, ", derived from `%s`", op.Base)
		}
		fmt.Fprintf(&b, ". %s\n\n| Parameter | Use | Card. | Type | Documentation |\n|---|---|---|---|---|\n", op.Description)
		for _, p := range op.Parameter {
			fmt.Fprintf(&b, "| `%s` | %s | %d..%s | %s | %s |\n", p.Name, p.Use, p.Min, p.Max, p.Type, cell(p.Documentation))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func sortedRawKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// sdOrder puts the document first, then Patient, the clinical profiles,
// the class S and audit profiles, and the extensions last.
func sdOrder(id string) int {
	order := []string{"mhp-bundle", "mhp-composition", "mhp-patient", "mhp-condition", "mhp-allergyintolerance",
		"mhp-medicationstatement", "mhp-medicationrequest", "mhp-immunization", "mhp-observation-lab", "mhp-procedure",
		"mhp-migration-context", "mhp-provenance", "mhp-auditevent", "mhp-arrival", "mhp-date-accuracy", "mhp-status-identifier",
		"mhp-audit-agent-organization", "mhp-audit-agent-country"}
	for i, o := range order {
		if o == id {
			return i
		}
	}
	return len(order)
}
