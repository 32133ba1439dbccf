package authz

import (
	"context"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/policies"
)

func builtinFS(t testing.TB) fs.FS {
	t.Helper()
	return policies.FS
}

// copyBuiltin copies the built-in policies into a fresh directory, for
// tests that edit them.
func copyBuiltin(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	err := fs.WalkDir(policies.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := fs.ReadFile(policies.FS, p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// writeFile writes a file under dir, creating folders. It writes a
// temporary file and renames it, as editors and ConfigMap updates do, so
// a watching engine never reads half a file.
func writeFile(t testing.TB, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, ".tmp-"+filepath.Base(p))
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
}

// readTestdata reads a file under testdata.
func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newEngine builds an engine over dir ("" = built-in) and closes it with
// the test.
func newEngine(t testing.TB, opts Options) *Engine {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	e, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// sharedEngine is the engine over the built-in policies that the tests
// which only decide share: compiling the policies is the expensive part of
// New, and Decide is safe for concurrent use. A test that reloads, closes,
// watches or reads the engine's memo builds its own with newEngine.
var sharedEngine struct {
	once sync.Once
	e    *Engine
	err  error
}

// builtinEngine returns the shared engine over the built-in policies.
func builtinEngine(t testing.TB) *Engine {
	t.Helper()
	sharedEngine.once.Do(func() {
		sharedEngine.e, sharedEngine.err = New(Options{Logger: quietLogger()})
	})
	if sharedEngine.err != nil {
		t.Fatal(sharedEngine.err)
	}
	return sharedEngine.e
}

func clinician(country string) auth.Requester {
	return auth.Requester{
		ClientID:     "ehr-" + strings.ToLower(country),
		Org:          "org-" + strings.ToLower(country) + "-hospital",
		Country:      country,
		Role:         "clinician",
		PurposeOfUse: "TREAT",
		Scopes:       []string{"system/*.rs"},
	}
}

func queryInput(r auth.Requester, resourceType, sourceCountry string) Input {
	return Input{
		Phase:     PhaseQuery,
		Requester: r,
		Action:    Action{Interaction: "read", ResourceType: resourceType},
		Source:    &Source{ID: strings.ToLower(sourceCountry) + "-sample", Country: sourceCountry},
	}
}

func releaseInput(r auth.Requester, res Resource, sourceCountry string, consent ...Provision) Input {
	in := queryInput(r, res.Type, sourceCountry)
	in.Phase = PhaseRelease
	in.Resource = &res
	in.Consent = consent
	return in
}

func clinical(resourceType string, labels ...string) Resource {
	r := Resource{Type: resourceType, Class: ClassClinical}
	for _, l := range labels {
		r.Security = append(r.Security, Coding{System: "http://terminology.hl7.org/CodeSystem/v3-ActCode", Code: l})
	}
	return r
}

func migrationContext() Resource {
	return Resource{
		Type:     "Observation",
		Class:    ClassSensitive,
		Security: []Coding{{System: "https://fhir.migrant-health.org/mhp/CodeSystem/mhp-sensitivity", Code: LabelMIGSTAT}},
	}
}

func decide(t testing.TB, e *Engine, in Input) Decision {
	t.Helper()
	d, err := e.Decide(context.Background(), in)
	if err != nil {
		t.Fatalf("Decide: %v", err)
	}
	return d
}

func fsysRead(dir, name string) ([]byte, error) {
	return os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
}

func astInterfaceToValue(x any) (ast.Value, error) { return ast.InterfaceToValue(x) }
