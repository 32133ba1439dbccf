package conformance

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/migrant-health/mhg/conformance/r4"
)

func TestArtifactsAreValidR4(t *testing.T) {
	all := Artifacts()
	if len(all) == 0 {
		t.Fatal("no artifacts embedded")
	}
	for _, a := range all {
		t.Run(a.File, func(t *testing.T) {
			cr, err := r4.Parse(a.JSON)
			if err != nil {
				t.Fatalf("r4.Parse: %v", err)
			}
			if got := r4.TypeName(cr); got != a.ResourceType {
				t.Errorf("type = %s, want %s", got, a.ResourceType)
			}
			if want := a.ResourceType + "-" + a.ID + ".json"; a.File != want {
				t.Errorf("file name = %s, want %s", a.File, want)
			}
			if !strings.HasSuffix(a.URL, "/"+a.ResourceType+"/"+a.ID) {
				t.Errorf("url %s does not end in /%s/%s", a.URL, a.ResourceType, a.ID)
			}
		})
	}
}

func TestStructureDefinitionsAreConstraints(t *testing.T) {
	for _, a := range StructureDefinitions() {
		var sd struct {
			Derivation     string `json:"derivation"`
			BaseDefinition string `json:"baseDefinition"`
			Differential   struct {
				Element []json.RawMessage `json:"element"`
			} `json:"differential"`
			Snapshot any `json:"snapshot"`
		}
		if err := json.Unmarshal(a.JSON, &sd); err != nil {
			t.Fatalf("%s: %v", a.File, err)
		}
		if sd.Derivation != "constraint" || sd.BaseDefinition == "" || len(sd.Differential.Element) == 0 || sd.Snapshot != nil {
			t.Errorf("%s: want a constraint with a base and a differential only", a.File)
		}
	}
}
