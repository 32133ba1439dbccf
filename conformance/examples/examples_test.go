package examples

import (
	"encoding/json"
	"io/fs"
	"path"
	"strings"
	"testing"

	"github.com/migrant-health/mhg/conformance/r4"
)

// sample is one parsed source folder.
type sample struct {
	// byKey maps "Type/id" to the raw resource JSON.
	byKey map[string]json.RawMessage
	// refs lists every "Type/id" reference found in the folder.
	refs []string
}

func loadSource(t *testing.T, id string) sample {
	t.Helper()
	s := sample{byKey: map[string]json.RawMessage{}}
	err := fs.WalkDir(FS, id, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) != ".json" {
			return err
		}
		b, err := fs.ReadFile(FS, p)
		if err != nil {
			return err
		}
		if _, err := r4.Parse(b); err != nil {
			t.Errorf("%s: not valid R4: %v", p, err)
			return nil
		}
		var bundle struct {
			ResourceType string `json:"resourceType"`
			Type         string `json:"type"`
			Entry        []struct {
				FullURL  string          `json:"fullUrl"`
				Resource json.RawMessage `json:"resource"`
			} `json:"entry"`
		}
		if err := json.Unmarshal(b, &bundle); err != nil {
			return err
		}
		if bundle.ResourceType != "Bundle" || (bundle.Type != "collection" && bundle.Type != "document") {
			t.Errorf("%s: want a collection or document Bundle, got %s %s", p, bundle.ResourceType, bundle.Type)
		}
		for i, e := range bundle.Entry {
			cr, err := r4.Parse(e.Resource)
			if err != nil {
				t.Errorf("%s entry %d: not valid R4 alone: %v", p, i, err)
				continue
			}
			key := r4.TypeName(cr) + "/" + r4.ID(cr)
			if e.FullURL != "urn:uuid:"+r4.ID(cr) {
				t.Errorf("%s entry %d: fullUrl %q does not name id %q", p, i, e.FullURL, r4.ID(cr))
			}
			if _, dup := s.byKey[key]; dup {
				t.Errorf("%s: %s appears twice in %s", p, key, id)
			}
			s.byKey[key] = e.Resource
			var v any
			if err := json.Unmarshal(e.Resource, &v); err != nil {
				return err
			}
			collectRefs(v, &s.refs)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", id, err)
	}
	return s
}

func collectRefs(v any, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			if k == "reference" {
				if s, ok := c.(string); ok {
					*out = append(*out, s)
				}
				continue
			}
			collectRefs(c, out)
		}
	case []any:
		for _, c := range x {
			collectRefs(c, out)
		}
	}
}

func TestSourcesAreValidAndSelfContained(t *testing.T) {
	for _, id := range Sources {
		t.Run(id, func(t *testing.T) {
			s := loadSource(t, id)
			patients := 0
			for k := range s.byKey {
				if strings.HasPrefix(k, "Patient/") {
					patients++
				}
			}
			if patients < 3 {
				t.Errorf("%d patients, want at least 3", patients)
			}
			for _, r := range s.refs {
				if strings.HasPrefix(r, "urn:uuid:") || strings.HasPrefix(r, "#") {
					t.Errorf("reference %q: samples use Type/id references", r)
					continue
				}
				if _, ok := s.byKey[r]; !ok {
					t.Errorf("reference %q does not resolve inside %s", r, id)
				}
			}
		})
	}
}

// The cross-border demo needs the same person in three countries, found by
// the same passport, with one vaccination recorded in two of them.
func TestAminaAcrossSources(t *testing.T) {
	const passport = "http://hl7.org/fhir/sid/passport-UKR"
	type found struct{ patientID, passport string }
	byPassport := map[string]found{}
	for _, id := range []string{"de-sample", "nl-sample", "ua-sample"} {
		s := loadSource(t, id)
		for k, raw := range s.byKey {
			if !strings.HasPrefix(k, "Patient/") {
				continue
			}
			var p struct {
				ID         string `json:"id"`
				Identifier []struct{ System, Value string }
			}
			if err := json.Unmarshal(raw, &p); err != nil {
				t.Fatal(err)
			}
			for _, ident := range p.Identifier {
				if ident.System == passport {
					byPassport[id] = found{p.ID, ident.Value}
				}
			}
		}
	}
	if len(byPassport) != 3 {
		t.Fatalf("passport found in %d of 3 sources", len(byPassport))
	}
	ids := map[string]bool{}
	values := map[string]bool{}
	for _, f := range byPassport {
		ids[f.patientID] = true
		values[f.passport] = true
	}
	if len(values) != 1 {
		t.Errorf("passport values differ across sources: %d distinct", len(values))
	}
	if len(ids) != 3 {
		t.Errorf("local patient ids must differ across sources, got %d distinct", len(ids))
	}

	// The same vaccination event in ua-sample and nl-sample: a shared
	// SNOMED vaccine code and the same date.
	events := func(id string) map[string]bool {
		s := loadSource(t, id)
		out := map[string]bool{}
		for k, raw := range s.byKey {
			if !strings.HasPrefix(k, "Immunization/") {
				continue
			}
			var im struct {
				VaccineCode struct {
					Coding []struct{ System, Code string }
				}
				Patient    struct{ Reference string }
				Occurrence string `json:"occurrenceDateTime"`
			}
			if err := json.Unmarshal(raw, &im); err != nil {
				t.Fatal(err)
			}
			if im.Patient.Reference != "Patient/"+byPassport[id].patientID {
				continue
			}
			for _, c := range im.VaccineCode.Coding {
				if c.System == "http://snomed.info/sct" {
					out[c.Code+"@"+im.Occurrence[:min(10, len(im.Occurrence))]] = true
				}
			}
		}
		return out
	}
	ua, nl := events("ua-sample"), events("nl-sample")
	shared := 0
	for e := range ua {
		if nl[e] {
			shared++
		}
	}
	if shared == 0 {
		t.Errorf("no vaccination event shared by ua-sample and nl-sample")
	}
}

func TestSourceFolders(t *testing.T) {
	if _, err := fs.Stat(FS, "de-sample/amina.json"); err != nil {
		t.Errorf("de-sample/amina.json: %v", err)
	}
}
