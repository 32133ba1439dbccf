package policies

import (
	"encoding/json"
	"io/fs"
	"strings"
	"testing"
)

func TestEmbeddedBundle(t *testing.T) {
	for _, name := range []string{".manifest", "mhg/authz/main.rego", "mhg/authz/main_test.rego", "data/agreements.json", SchemaPath} {
		if _, err := fs.Stat(FS, name); err != nil {
			t.Errorf("%s not embedded: %v", name, err)
		}
	}
	var schema map[string]any
	if err := json.Unmarshal(InputSchema(), &schema); err != nil {
		t.Fatalf("input schema: %v", err)
	}
	if schema["additionalProperties"] != false {
		t.Error("the input schema must be closed")
	}
	var rego int
	_ = fs.WalkDir(FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".rego") {
			rego++
		}
		return err
	})
	if rego < 16 {
		t.Errorf("%d Rego files embedded, want the policies and their tests", rego)
	}
}
