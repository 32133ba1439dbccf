package mappings

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/migrant-health/mhg/conformance/r4"
)

// readNDJSON parses every line of an output file as R4.
func readNDJSON(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	var types []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		cr, err := r4.Parse(sc.Bytes())
		if err != nil {
			t.Errorf("%s: line is not valid R4: %v", filepath.Base(path), err)
			continue
		}
		types = append(types, r4.TypeName(cr))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return types
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

func TestConvert(t *testing.T) {
	t.Parallel()
	e := testEngine(t)
	dir := t.TempDir()
	ndjson := filepath.Join(dir, "export.ndjson")
	var lines bytes.Buffer
	b, err := os.ReadFile(filepath.Join("testdata", "us-core", "in", "edge-cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range fixtureResources(t, b) {
		if err := json.Compact(&lines, r); err != nil {
			t.Fatal(err)
		}
		lines.WriteString("\n\n")
	}
	lines.WriteString(`{"resourceType":"Patient","id":"bad","birthDate":"not a date"}` + "\n")
	if err := os.WriteFile(ndjson, lines.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// A raw Synthea transaction Bundle (trimmed): urn:uuid references, and
	// Encounters and Claims that the profile does not cover.
	raw := filepath.Join("testdata", "convert", "synthea-transaction.json")
	inputs := []string{filepath.Join("testdata", "us-core", "in", "marcos-delagarza.json"), ndjson, raw}
	out := filepath.Join(dir, "out")
	progress := &countingProgress{}
	st, err := Convert(context.Background(), e, ConvertOptions{
		Profile: "us-core", Inputs: inputs, OutDir: out, Progress: progress, Provenance: true,
		Map: Options{SourceID: "us-export"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if progress.read == 0 || progress.read != progress.total || !progress.finished {
		t.Errorf("progress: read %d of %d bytes, finished %v", progress.read, progress.total, progress.finished)
	}
	if st.Files != len(inputs) || st.Read == 0 || st.Written == 0 || st.Sensitive < 2 || st.Skipped < 1 {
		t.Errorf("stats = %+v", st)
	}
	names := dirNames(t, out)
	for _, want := range []string{"Patient.ndjson", "Observation.ndjson", "Observation.restricted.ndjson", "Procedure.restricted.ndjson", "Provenance.ndjson", "OperationOutcome.ndjson"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("no %s in %v", want, names)
		}
	}
	total := 0
	for _, n := range names {
		if strings.HasPrefix(n, ".") || strings.Contains(n, "partial") {
			t.Errorf("temporary file left: %s", n)
			continue
		}
		types := readNDJSON(t, filepath.Join(out, n))
		typ := strings.SplitN(n, ".", 2)[0]
		for _, got := range types {
			if got != typ {
				t.Errorf("%s holds a %s", n, got)
			}
		}
		if typ != "Provenance" && typ != "OperationOutcome" {
			total += len(types)
		}
		if st.ByType[n] != 0 && st.ByType[n] != len(types) {
			t.Errorf("%s: %d lines, stats say %d", n, len(types), st.ByType[n])
		}
	}
	if total != st.Written {
		t.Errorf("%d resources in the files, stats say %d", total, st.Written)
	}
	restricted := readNDJSON(t, filepath.Join(out, "Observation.restricted.ndjson"))
	if len(restricted) < 2 {
		t.Errorf("class S observations not separated: %d", len(restricted))
	}
	for _, n := range []string{"Patient.ndjson", "Condition.ndjson", "Observation.ndjson", "Immunization.ndjson"} {
		b, err := os.ReadFile(filepath.Join(out, n))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("urn:uuid:")) {
			t.Errorf("a urn:uuid reference survived in %s", n)
		}
	}
}

// TestConvertNeverLeavesAHalfFile: a failure midway (a malformed second
// input, a cancelled context) leaves the output directory as it was.
func TestConvertNeverLeavesAHalfFile(t *testing.T) {
	t.Parallel()
	e := testEngine(t)
	good := filepath.Join("testdata", "de-basis", "in", "amina.json")
	goodBytes, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		inputs func(dir string) []string
		ctx    func() context.Context
	}{
		{"truncated bundle after a good one", func(dir string) []string {
			bad := filepath.Join(dir, "truncated.json")
			if err := os.WriteFile(bad, goodBytes[:len(goodBytes)/2], 0o644); err != nil {
				t.Fatal(err)
			}
			return []string{good, bad}
		}, context.Background},
		{"unterminated bundle", func(dir string) []string {
			bad := filepath.Join(dir, "broken.json")
			if err := os.WriteFile(bad, []byte(`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient"}},{`), 0o644); err != nil {
				t.Fatal(err)
			}
			return []string{good, bad}
		}, context.Background},
		{"missing input", func(dir string) []string {
			return []string{good, filepath.Join(dir, "nope.json")}
		}, context.Background},
		{"cancelled", func(dir string) []string { return []string{good} }, func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out")
			if err := os.MkdirAll(out, 0o755); err != nil {
				t.Fatal(err)
			}
			previous := filepath.Join(out, "Patient.ndjson")
			if err := os.WriteFile(previous, []byte("from an earlier run\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Convert(tc.ctx(), e, ConvertOptions{Profile: "de-basis", Inputs: tc.inputs(dir), OutDir: out})
			if !errors.Is(err, ErrConvert) {
				t.Fatalf("err = %v, want ErrConvert", err)
			}
			if names := dirNames(t, out); len(names) != 1 || names[0] != "Patient.ndjson" {
				t.Errorf("output directory after a failure: %v", names)
			}
			if b, _ := os.ReadFile(previous); string(b) != "from an earlier run\n" {
				t.Errorf("an earlier output was overwritten: %q", b)
			}
		})
	}
}

func TestConvertRejectsBadOptions(t *testing.T) {
	t.Parallel()
	e := testEngine(t)
	if _, err := Convert(context.Background(), e, ConvertOptions{Profile: "xx", Inputs: []string{"a"}, OutDir: t.TempDir()}); !errors.Is(err, ErrUnknownProfile) {
		t.Errorf("unknown profile: %v", err)
	}
	if _, err := Convert(context.Background(), e, ConvertOptions{Profile: "ips", OutDir: t.TempDir()}); !errors.Is(err, ErrConvert) {
		t.Errorf("no inputs: %v", err)
	}
}

// countingProgress records what Convert reports.
type countingProgress struct {
	total, read int64
	finished    bool
}

func (p *countingProgress) ChangeMax64(n int64) { p.total = n }
func (p *countingProgress) Add(n int) error     { p.read += int64(n); return nil }
func (p *countingProgress) Finish() error       { p.finished = true; return nil }
