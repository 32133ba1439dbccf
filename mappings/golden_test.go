package mappings

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/migrant-health/mhg/conformance"
	"github.com/migrant-health/mhg/conformance/examples"
	"github.com/migrant-health/mhg/conformance/r4"
)

var update = flag.Bool("update", false, "rewrite mappings/testdata/<profile>/want from the current specs")

var (
	engineOnce sync.Once
	theEngine  *Engine
	engineErr  error
)

// testEngine compiles the built-in specs once per test binary.
func testEngine(t testing.TB) *Engine {
	t.Helper()
	engineOnce.Do(func() { theEngine, engineErr = Load() })
	if engineErr != nil {
		t.Fatalf("Load: %v", engineErr)
	}
	return theEngine
}

// testID is the gateway-id function of the golden tests: deterministic,
// readable as a gateway id, and never equal to the upstream id, so that a
// leaked upstream id shows in a golden file.
func testID(typ, id string) string {
	sum := sha256.Sum256([]byte(typ + "/" + id))
	return "g" + hex.EncodeToString(sum[:8])
}

func testOptions(profile string) Options {
	return Options{SourceID: profile + "-test", ID: testID}
}

// fixtureResources returns the resources of one input file: the entries of
// a Bundle, or the file itself.
func fixtureResources(t testing.TB, b []byte) [][]byte {
	t.Helper()
	var head struct {
		ResourceType string `json:"resourceType"`
		Entry        []struct {
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		t.Fatalf("fixture: %v", err)
	}
	if head.ResourceType != "Bundle" {
		return [][]byte{b}
	}
	out := make([][]byte, 0, len(head.Entry))
	for _, e := range head.Entry {
		out = append(out, e.Resource)
	}
	return out
}

type goldenOutput struct {
	Type       string          `json:"type"`
	Class      string          `json:"class"`
	UpstreamID string          `json:"upstreamId"`
	Resource   json.RawMessage `json:"resource"`
}

type goldenIssue struct {
	UpstreamID string `json:"upstreamId"`
	Severity   string `json:"severity"`
	Code       string `json:"code"`
	Path       string `json:"path"`
	Message    string `json:"message"`
}

type goldenFile struct {
	Outputs  []goldenOutput `json:"outputs"`
	Issues   []goldenIssue  `json:"issues"`
	Unmapped []goldenIssue  `json:"unmapped,omitempty"`
}

// profilesWithFixtures lists testdata/<profile> folders.
func profilesWithFixtures(t testing.TB) []string {
	t.Helper()
	dirs, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join("testdata", d.Name(), "in")); err == nil {
			out = append(out, d.Name())
		}
	}
	return out
}

// readFixture returns a fixture file's bytes.
func readFixture(t testing.TB, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// addFixtureFiles adds every fixture file of every profile, whole, to a
// fuzz target's seeds.
func addFixtureFiles(f *testing.F) {
	for _, p := range profilesWithFixtures(f) {
		for _, file := range inputFiles(f, p) {
			f.Add(readFixture(f, file))
		}
	}
}

func inputFiles(t testing.TB, profile string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", profile, "in", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	return files
}

// mapFile maps every resource of one fixture and renders the golden form:
// each output parsed and re-rendered by the R4 codec (which fails the test
// when an output is not valid R4).
func mapFile(t *testing.T, e *Engine, profile, file string) goldenFile {
	t.Helper()
	g := goldenFile{Outputs: []goldenOutput{}, Issues: []goldenIssue{}}
	for i, in := range fixtureResources(t, readFixture(t, file)) {
		if _, err := r4.Parse(in); err != nil {
			t.Fatalf("%s entry %d: the fixture itself is not valid R4: %v", file, i, err)
		}
		res, err := e.Map(profile, in, testOptions(profile))
		if err != nil {
			if !errors.Is(err, ErrNotMappable) {
				t.Fatalf("%s entry %d: %v", file, i, err)
			}
			g.Unmapped = append(g.Unmapped, goldenIssue{Severity: sevError, Code: codeNotSupported, Message: err.Error()})
			continue
		}
		var upstream string
		if len(res.Outputs) > 0 {
			upstream = res.Outputs[0].UpstreamID
		}
		for _, out := range res.Outputs {
			cr, err := r4.Parse(out.JSON)
			if err != nil {
				t.Errorf("%s entry %d: output %s is not valid R4: %v\n%s", file, i, out.Type, err, out.JSON)
				continue
			}
			pretty, err := r4.Marshal(cr)
			if err != nil {
				t.Fatal(err)
			}
			g.Outputs = append(g.Outputs, goldenOutput{Type: out.Type, Class: out.Class, UpstreamID: out.UpstreamID, Resource: pretty})
		}
		for _, is := range res.Issues {
			g.Issues = append(g.Issues, goldenIssue{UpstreamID: upstream, Severity: is.Severity, Code: is.Code, Path: is.Path, Message: is.Message})
		}
	}
	return g
}

func renderGolden(t *testing.T, g goldenFile) []byte {
	t.Helper()
	raw, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		t.Fatal(err)
	}
	buf.WriteByte('\n')
	return buf.Bytes()
}

// TestGolden maps every fixture of every profile and compares with
// testdata/<profile>/want; `go test ./mappings -update` rewrites them.
func TestGolden(t *testing.T) {
	t.Parallel()
	e := testEngine(t)
	profiles := profilesWithFixtures(t)
	for _, p := range e.Profiles() {
		found := false
		for _, q := range profiles {
			found = found || p == q
		}
		if !found {
			t.Errorf("profile %s has no fixtures in testdata/%s/in", p, p)
		}
	}
	for _, profile := range profiles {
		t.Run(profile, func(t *testing.T) {
			files := inputFiles(t, profile)
			if len(files) == 0 {
				t.Fatal("no input fixtures")
			}
			for _, in := range files {
				name := filepath.Base(in)
				t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
					got := renderGolden(t, mapFile(t, e, profile, in))
					wantPath := filepath.Join("testdata", profile, "want", name)
					if *update {
						if err := os.MkdirAll(filepath.Dir(wantPath), 0o755); err != nil {
							t.Fatal(err)
						}
						if err := os.WriteFile(wantPath, got, 0o644); err != nil {
							t.Fatal(err)
						}
						return
					}
					want, err := os.ReadFile(wantPath)
					if err != nil {
						t.Fatalf("%v (run go test ./mappings -update)", err)
					}
					if diff := cmp.Diff(string(want), string(got)); diff != "" {
						t.Errorf("%s differs from the golden file (-want +got):\n%s", wantPath, diff)
					}
				})
			}
		})
	}
}

// TestGoldenConformsToMHP checks every mapped output against the MHP
// profile it claims, with the conformance checker, and checks that its
// local references resolve (FHIR dom-3).
func TestGoldenConformsToMHP(t *testing.T) {
	t.Parallel()
	e := testEngine(t)
	for _, profile := range profilesWithFixtures(t) {
		for _, in := range inputFiles(t, profile) {
			g := mapFile(t, e, profile, in)
			for _, out := range g.Outputs {
				for _, v := range r4.ContainedViolations(out.Resource) {
					t.Errorf("%s %s (%s): dom-3: %s", in, out.Type, out.UpstreamID, v)
				}
				for _, is := range conformance.Check([]byte(out.Resource)) {
					if is.Severity == conformance.SeverityError || is.Severity == conformance.SeverityFatal {
						t.Errorf("%s %s (%s): %s", in, out.Type, out.UpstreamID, is)
					}
				}
			}
		}
	}
}

// TestDemoSourcesMap maps the sample data the demo sources serve
// (conformance/examples) with their profiles: every resource a source
// holds maps to valid R4 that passes the MHP checker, except the IPS
// Compositions, which the gateway never serves as such.
func TestDemoSourcesMap(t *testing.T) {
	t.Parallel()
	e := testEngine(t)
	profiles := map[string]string{"de-sample": "de-basis", "nl-sample": "nl-core", "ua-sample": "ips", "us-sample": "us-core"}
	for _, src := range examples.Sources {
		profile, ok := profiles[src]
		if !ok {
			t.Fatalf("no profile known for demo source %s", src)
		}
		t.Run(src, func(t *testing.T) {
			err := fs.WalkDir(examples.FS, src, func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				b, err := fs.ReadFile(examples.FS, p)
				if err != nil {
					return err
				}
				for i, in := range fixtureResources(t, b) {
					res, err := e.Map(profile, in, Options{SourceID: src, Country: strings.ToUpper(src[:2]), ID: testID})
					if err != nil {
						if cr, perr := r4.Parse(in); perr == nil && r4.TypeName(cr) == "Composition" && errors.Is(err, ErrNotMappable) {
							continue
						}
						t.Errorf("%s entry %d: %v", p, i, err)
						continue
					}
					for _, out := range res.Outputs {
						for _, is := range conformance.Check(out.JSON) {
							if is.Severity == conformance.SeverityError || is.Severity == conformance.SeverityFatal {
								t.Errorf("%s entry %d %s: %s", p, i, out.Type, is)
							}
						}
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestTreeIsDecodedJSON maps every fixture twice, once as bytes and once
// as trees (Options.Tree): each tree must be exactly what decoding the
// bytes gives, so a caller reading trees sees what a client reading the
// JSON sees.
func TestTreeIsDecodedJSON(t *testing.T) {
	t.Parallel()
	e := testEngine(t)
	for _, profile := range profilesWithFixtures(t) {
		for _, file := range inputFiles(t, profile) {
			for i, in := range fixtureResources(t, readFixture(t, file)) {
				opts := testOptions(profile)
				want, err := e.Map(profile, in, opts)
				if err != nil {
					continue
				}
				opts.Tree = true
				got, err := e.Map(profile, in, opts)
				if err != nil {
					t.Fatalf("%s entry %d: with trees: %v", file, i, err)
				}
				if len(got.Outputs) != len(want.Outputs) {
					t.Fatalf("%s entry %d: %d outputs as trees, %d as bytes", file, i, len(got.Outputs), len(want.Outputs))
				}
				for k, o := range got.Outputs {
					if o.JSON != nil || o.Tree == nil {
						t.Fatalf("%s entry %d output %d: JSON %v, tree %v", file, i, k, o.JSON != nil, o.Tree != nil)
					}
					dec, err := decodeObject(want.Outputs[k].JSON)
					if err != nil {
						t.Fatal(err)
					}
					if diff := cmp.Diff(dec, o.Tree); diff != "" {
						t.Errorf("%s entry %d output %d: tree differs from the decoded bytes (-bytes +tree):\n%s", file, i, k, diff)
					}
					w := want.Outputs[k]
					if o.Type != w.Type || o.ID != w.ID || o.Class != w.Class || o.UpstreamID != w.UpstreamID {
						t.Errorf("%s entry %d output %d: %+v, want %+v", file, i, k, o, w)
					}
				}
			}
		}
	}
}
