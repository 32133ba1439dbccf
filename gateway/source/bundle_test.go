package source

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/migrant-health/mhg/conformance/r4"
)

const (
	// The Synthea patient of testdata/synthea/Louis_Maggio_*.json.
	maggioFile = "testdata/synthea/Louis_Maggio_2e275d4b-855a-4eb2-9021-5410aa8acd4f.json"
)

// syntheaBundle loads testdata/synthea once for the tests that only read it.
var syntheaBundle = sync.OnceValues(func() (*Bundle, error) {
	return OpenBundle(Options{ID: "t", Country: "US", Profile: "us-core", Kind: KindBundle, Dir: "testdata/synthea", Logger: quietLogger()})
})

func sharedSynthea(t testing.TB) *Bundle {
	t.Helper()
	b, err := syntheaBundle()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func openBundleDir(t testing.TB, dir string) *Bundle {
	t.Helper()
	b, err := OpenBundle(Options{ID: "t", Country: "DE", Profile: "de-basis", Kind: KindBundle, Dir: dir, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("OpenBundle(%s): %v", dir, err)
	}
	return b
}

// fixtureEntries reads a fixture Bundle with encoding/json only, as an
// independent view of what the source should serve.
type fixtureEntry struct {
	FullURL  string         `json:"fullUrl"`
	Resource map[string]any `json:"resource"`
}

func readFixture(t testing.TB, path string) []fixtureEntry {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var bundle struct{ Entry []fixtureEntry }
	if err := json.Unmarshal(b, &bundle); err != nil {
		t.Fatal(err)
	}
	return bundle.Entry
}

func fixturePatientID(t testing.TB, path string) string {
	t.Helper()
	for _, e := range readFixture(t, path) {
		if e.Resource["resourceType"] == "Patient" {
			return e.Resource["id"].(string)
		}
	}
	t.Fatalf("%s has no Patient", path)
	return ""
}

func ids(rs []Resource) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Type + "/" + r.ID
	}
	return out
}

// allReferences collects every "reference" string in a JSON document.
func allReferences(v any, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if s, ok := val.(string); ok && k == "reference" {
				*out = append(*out, s)
			}
			allReferences(val, out)
		}
	case []any:
		for _, val := range x {
			allReferences(val, out)
		}
	}
}

func TestBundleSynthea(t *testing.T) {
	b := sharedSynthea(t)
	ctx := context.Background()

	files, _ := filepath.Glob("testdata/synthea/*.json")
	distinct := map[string]bool{}
	for _, f := range files {
		for _, e := range readFixture(t, f) {
			distinct[e.Resource["resourceType"].(string)+"/"+e.Resource["id"].(string)] = true
		}
	}
	if b.Len() != len(distinct) {
		t.Errorf("Len = %d, want %d distinct resources in the fixtures", b.Len(), len(distinct))
	}

	// Served resources are valid R4 and no urn:uuid reference is left.
	for _, typ := range []string{"Patient", "Condition", "Observation", "Encounter", "Claim", "ExplanationOfBenefit", "Immunization"} {
		rs, err := b.Search(ctx, typ, nil)
		if err != nil {
			t.Fatalf("Search(%s): %v", typ, err)
		}
		if len(rs) == 0 {
			t.Fatalf("Search(%s) found nothing", typ)
		}
		for k, r := range rs {
			// Open validated everything; re-check a sample of what is served.
			if k%10 == 0 {
				if _, err := r4.Parse(r.JSON); err != nil {
					t.Fatalf("%s/%s served invalid: %v", r.Type, r.ID, err)
				}
			}
			var doc any
			_ = json.Unmarshal(r.JSON, &doc)
			var refs []string
			allReferences(doc, &refs)
			for _, ref := range refs {
				if strings.HasPrefix(ref, "urn:uuid:") {
					t.Fatalf("%s/%s still references %s", r.Type, r.ID, ref)
				}
			}
		}
	}

	// The urn:uuid subject of a Condition became Patient/<id>.
	pid := fixturePatientID(t, maggioFile)
	var condID, wantSubject string
	for _, e := range readFixture(t, maggioFile) {
		if e.Resource["resourceType"] == "Condition" {
			condID = e.Resource["id"].(string)
			wantSubject = e.Resource["subject"].(map[string]any)["reference"].(string)
			break
		}
	}
	if !strings.HasPrefix(wantSubject, "urn:uuid:") {
		t.Fatalf("fixture Condition subject %q is not a urn:uuid reference; the test proves nothing", wantSubject)
	}
	c, err := b.Read(ctx, "Condition", condID)
	if err != nil {
		t.Fatal(err)
	}
	var cond struct{ Subject struct{ Reference string } }
	if err := json.Unmarshal(c.JSON, &cond); err != nil {
		t.Fatal(err)
	}
	if cond.Subject.Reference != "Patient/"+pid {
		t.Errorf("Condition subject = %q, want Patient/%s", cond.Subject.Reference, pid)
	}

	// Searching a patient's conditions finds exactly those of its file.
	var want []string
	for _, e := range readFixture(t, maggioFile) {
		if e.Resource["resourceType"] == "Condition" {
			want = append(want, "Condition/"+e.Resource["id"].(string))
		}
	}
	got, err := b.Search(ctx, "Condition", url.Values{"patient": {pid}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(got), want) {
		t.Errorf("Condition?patient = %v, want %v", ids(got), want)
	}
}

func TestBundleSearch(t *testing.T) {
	b := sharedSynthea(t)
	pid := fixturePatientID(t, maggioFile)
	var maggioClaims, maggioEOBs []string
	for _, e := range readFixture(t, maggioFile) {
		switch e.Resource["resourceType"] {
		case "Claim":
			maggioClaims = append(maggioClaims, "Claim/"+e.Resource["id"].(string))
		case "ExplanationOfBenefit":
			maggioEOBs = append(maggioEOBs, "ExplanationOfBenefit/"+e.Resource["id"].(string))
		}
	}
	otherPID := fixturePatientID(t, "testdata/synthea/Blair_Conroy_8de41d0d-0ae7-4cb6-97e2-900b07a1e4f7.json")
	maggio := []string{"Patient/" + pid}
	tests := []struct {
		name    string
		typ     string
		params  url.Values
		want    []string
		wantErr error
		// notInErr must not appear in the error message.
		notInErr string
	}{
		{name: "identifier system|value", typ: "Patient", params: url.Values{"identifier": {"http://hl7.org/fhir/sid/us-ssn|999-55-5167"}}, want: maggio},
		{name: "identifier bare value any system", typ: "Patient", params: url.Values{"identifier": {"X21447517X"}}, want: maggio},
		{name: "identifier wrong system", typ: "Patient", params: url.Values{"identifier": {"urn:oid:1.2.3|999-55-5167"}}, want: nil},
		{name: "identifier no-system form misses values that have one", typ: "Patient", params: url.Values{"identifier": {"|999-55-5167"}}, want: nil},
		{name: "identifier alternatives", typ: "Patient", params: url.Values{"identifier": {"nope,http://hl7.org/fhir/sid/us-ssn|999-55-5167"}}, want: maggio},
		{name: "identifier and _id must both match", typ: "Patient", params: url.Values{"identifier": {"X21447517X"}, "_id": {otherPID}}, want: nil},
		{name: "_id", typ: "Patient", params: url.Values{"_id": {pid}}, want: maggio},
		{name: "_count is ignored", typ: "Patient", params: url.Values{"_id": {pid}, "_count": {"1"}}, want: maggio},
		{name: "patient reference form", typ: "Claim", params: url.Values{"patient": {"Patient/" + pid}}, want: maggioClaims},
		{name: "patient bare id", typ: "Claim", params: url.Values{"patient": {pid}}, want: maggioClaims},
		{name: "beneficiary indexed as patient", typ: "ExplanationOfBenefit", params: url.Values{"patient": {pid}}, want: maggioEOBs},
		{name: "subject", typ: "Claim", params: url.Values{"subject": {pid}}, want: maggioClaims},
		{name: "unknown patient", typ: "Condition", params: url.Values{"patient": {"nobody"}}, want: nil},
		{name: "subject of another type", typ: "Condition", params: url.Values{"subject": {"Group/x"}}, wantErr: ErrRejected, notInErr: "Group/x"},
		{name: "unsupported parameter", typ: "Condition", params: url.Values{"code": {"http://snomed.info/sct|44054006"}}, wantErr: ErrRejected, notInErr: "44054006"},
		{name: "patient on Patient is unsupported", typ: "Patient", params: url.Values{"patient": {pid}}, wantErr: ErrRejected, notInErr: pid},
		{name: "identifier on Condition is unsupported", typ: "Condition", params: url.Values{"identifier": {"999-55-5167"}}, wantErr: ErrRejected, notInErr: "999-55-5167"},
		{name: "identifier with two bars", typ: "Patient", params: url.Values{"identifier": {"a|b|999-55-5167"}}, wantErr: ErrRejected, notInErr: "999-55-5167"},
		{name: "unknown type", typ: "Nothing", want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := b.Search(context.Background(), tc.typ, tc.params)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if tc.notInErr != "" && strings.Contains(err.Error(), tc.notInErr) {
					t.Errorf("error %q quotes the search value", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids(got), tc.want) {
				t.Errorf("got %v, want %v", ids(got), tc.want)
			}
		})
	}
	t.Run("error names the unsupported parameter", func(t *testing.T) {
		_, err := b.Search(context.Background(), "Condition", url.Values{"code": {"x"}})
		if err == nil || !strings.Contains(err.Error(), `"code"`) {
			t.Errorf("err = %v, want it to name the parameter", err)
		}
	})
	t.Run("stable order", func(t *testing.T) {
		first, err := b.Search(context.Background(), "Observation", nil)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			again, _ := b.Search(context.Background(), "Observation", nil)
			if !slices.Equal(ids(first), ids(again)) {
				t.Fatal("two identical searches returned different orders")
			}
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := b.Search(ctx, "Patient", nil); !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	})
}

func TestBundleRead(t *testing.T) {
	b := sharedSynthea(t)
	pid := fixturePatientID(t, maggioFile)
	tests := []struct {
		name    string
		typ, id string
		wantErr error
	}{
		{name: "patient", typ: "Patient", id: pid},
		{name: "unknown id", typ: "Patient", id: "nope", wantErr: ErrNotFound},
		{name: "id of another type", typ: "Condition", id: pid, wantErr: ErrNotFound},
		{name: "unknown type", typ: "Nothing", id: pid, wantErr: ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := b.Read(context.Background(), tc.typ, tc.id)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), tc.id) {
					t.Errorf("error %q holds the id", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Type != tc.typ || r.ID != tc.id {
				t.Errorf("got %s/%s", r.Type, r.ID)
			}
			cr, err := r4.Parse(r.JSON)
			if err != nil || r4.ID(cr) != tc.id {
				t.Errorf("JSON does not hold the resource: %v", err)
			}
		})
	}
}

func TestBundleIPSAndNDJSON(t *testing.T) {
	ctx := context.Background()
	t.Run("ips documents", func(t *testing.T) {
		b := openBundleDir(t, "testdata/ips")
		// Each document's Composition, Patient and clinical entries are served.
		for _, f := range []string{"Bundle-IPS-examples-Bundle-01.json", "Bundle-bundle-minimal.json", "Bundle-bundle-no-info-required-sections.json"} {
			entries := readFixture(t, filepath.Join("testdata/ips", f))
			for _, e := range entries {
				typ, id := e.Resource["resourceType"].(string), e.Resource["id"].(string)
				if _, err := b.Read(ctx, typ, id); err != nil {
					t.Errorf("%s: Read(%s): %v", f, typ, err)
				}
			}
		}
		got, err := b.Search(ctx, "AllergyIntolerance", url.Values{"patient": {"AAA1234"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].ID != "e198be1e-9861-46af-9d97-841ef9f7c707" {
			t.Errorf("AllergyIntolerance?patient=AAA1234 = %v", ids(got))
		}
	})
	t.Run("ndjson", func(t *testing.T) {
		b := openBundleDir(t, "testdata/ndjson")
		if b.Len() != 4 {
			t.Errorf("Len = %d, want the 4 lines", b.Len())
		}
		got, err := b.Search(ctx, "Observation", url.Values{"subject": {"Patient/example"}})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(got), []string{"Observation/example"}) {
			t.Errorf("Observation?subject = %v", ids(got))
		}
		p, err := b.Read(ctx, "Patient", "example")
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(p.JSON, []byte("\n")) {
			t.Error("served JSON is not compact")
		}
		got, err = b.Search(ctx, "Patient", url.Values{"identifier": {"urn:oid:1.2.36.146.595.217.0.1|12345"}})
		if err != nil || !slices.Equal(ids(got), []string{"Patient/example"}) {
			t.Errorf("identifier search = %v, %v", ids(got), err)
		}
	})
}

// writeFiles makes a directory with the given files for one test.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestBundleOpenRewritesAndAssignsIDs(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"b.json": `{"resourceType":"Bundle","type":"collection","entry":[
		  {"fullUrl":"urn:uuid:0d7b6a9e-7f4b-4a35-9d0a-5b1f3d6e2c11","resource":{"resourceType":"Patient",
		     "identifier":[{"value":"NS-1"},{"system":"urn:oid:1.2.3","value":"S-1"}]}},
		  {"fullUrl":"urn:uuid:9a0c2d5b-1e3f-4a6b-8c7d-2e1f0a9b8c7d","resource":{"resourceType":"Consent","status":"active",
		     "scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},
		     "category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],
		     "patient":{"reference":"urn:uuid:0d7b6a9e-7f4b-4a35-9d0a-5b1f3d6e2c11"}}},
		  {"fullUrl":"urn:uuid:77777777-1e3f-4a6b-8c7d-2e1f0a9b8c7d","resource":{"resourceType":"Condition","id":"c1",
		     "subject":{"reference" : "urn:uuid:0d7b6a9e-7f4b-4a35-9d0a-5b1f3d6e2c11", "display":"reference"}}},
		  {"response":{"status":"201 Created"}}
		]}`,
	})
	b := openBundleDir(t, dir)
	ctx := context.Background()
	const pid = "0d7b6a9e-7f4b-4a35-9d0a-5b1f3d6e2c11"
	p, err := b.Read(ctx, "Patient", pid)
	if err != nil {
		t.Fatalf("Patient got no id from its fullUrl: %v", err)
	}
	if cr, err := r4.Parse(p.JSON); err != nil || r4.ID(cr) != pid {
		t.Errorf("served Patient JSON lacks the id: %v", err)
	}
	for _, q := range []struct{ params url.Values }{
		{url.Values{"identifier": {"|NS-1"}}},
		{url.Values{"identifier": {"NS-1"}}},
		{url.Values{"identifier": {"urn:oid:1.2.3|S-1"}}},
	} {
		got, err := b.Search(ctx, "Patient", q.params)
		if err != nil || !slices.Equal(ids(got), []string{"Patient/" + pid}) {
			t.Errorf("Patient?%s = %v, %v", q.params.Encode(), ids(got), err)
		}
	}
	if got, _ := b.Search(ctx, "Patient", url.Values{"identifier": {"|S-1"}}); len(got) != 0 {
		t.Errorf("|S-1 matched an identifier that has a system: %v", ids(got))
	}
	got, err := b.Search(ctx, "Consent", url.Values{"patient": {pid}})
	if err != nil || len(got) != 1 {
		t.Fatalf("Consent?patient = %v, %v", ids(got), err)
	}
	var consent struct{ Patient struct{ Reference string } }
	_ = json.Unmarshal(got[0].JSON, &consent)
	if consent.Patient.Reference != "Patient/"+pid {
		t.Errorf("Consent.patient = %q", consent.Patient.Reference)
	}
	c, err := b.Read(ctx, "Condition", "c1")
	if err != nil {
		t.Fatal(err)
	}
	var cond struct {
		Subject struct{ Reference, Display string }
	}
	_ = json.Unmarshal(c.JSON, &cond)
	if cond.Subject.Reference != "Patient/"+pid || cond.Subject.Display != "reference" {
		t.Errorf("Condition.subject = %+v", cond.Subject)
	}
}

func TestBundleOpenErrors(t *testing.T) {
	patient := readTestdata(t, "r4/patient-example.json")
	tests := []struct {
		name  string
		files map[string]string
		dir   string // used instead of files when set
		// builtin is a BuiltinDir, opened with no Builtin file system.
		builtin string
		// want are substrings of the error; notWant must not appear.
		want    []string
		notWant []string
		is      error
	}{
		{
			name:    "invalid resource in a file",
			files:   map[string]string{"a.json": patient, "z/bad.json": readTestdata(t, "invalid/patient-gender-number.json")},
			want:    []string{"z/bad.json", "Patient.gender"},
			notWant: []string{"Chalmers", "1974-12-25"},
			is:      ErrInvalidResponse,
		},
		{
			name: "invalid entry of a bundle names its index",
			files: map[string]string{"b.json": `{"resourceType":"Bundle","type":"collection","entry":[{"resource":` + patient +
				`},{"resource":{"resourceType":"Patient","id":"p2","birthDate":"1999-02-31x"}}]}`},
			want:    []string{"b.json entry 1", "Patient.birthDate"},
			notWant: []string{"1999"},
			is:      ErrInvalidResponse,
		},
		{
			name:    "invalid ndjson line names its number",
			files:   map[string]string{"x.ndjson": readTestdata(t, "ndjson/example.ndjson") + "\n" + `{"resourceType":"Patient","id":"q","gender":5}` + "\n"},
			want:    []string{"x.ndjson line 6"},
			notWant: []string{`"q"`},
			is:      ErrInvalidResponse,
		},
		{
			name:  "truncated json",
			files: map[string]string{"t.json": readTestdata(t, "invalid/truncated.json")},
			want:  []string{"t.json"},
			is:    ErrInvalidResponse,
		},
		{
			name:  "entry with neither id nor fullUrl",
			files: map[string]string{"b.json": `{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Patient"}}]}`},
			want:  []string{"b.json entry 0", "Patient.id"},
			is:    ErrInvalidResponse,
		},
		{
			name:  "every bad file is reported",
			files: map[string]string{"1.json": "[]", "2.json": "{", "3.json": patient},
			want:  []string{"1.json", "2.json"},
			is:    ErrInvalidResponse,
		},
		{name: "no files", files: map[string]string{"README.md": "# nothing"}, want: []string{"no .json or .ndjson"}},
		{name: "missing dir", dir: "testdata/does-not-exist", want: []string{"does-not-exist"}},
		{name: "builtin without a file system", builtin: "de", want: []string{"built-in"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.dir
			if dir == "" && tc.builtin == "" {
				dir = writeFiles(t, tc.files)
			}
			_, err := Open(Options{ID: "t", Kind: KindBundle, Dir: dir, BuiltinDir: tc.builtin, Logger: quietLogger()})
			if err == nil {
				t.Fatal("Open succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error %q quotes content %q", err, w)
				}
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v does not wrap %v", err, tc.is)
			}
		})
	}
	t.Run("codec detail stays reachable", func(t *testing.T) {
		dir := writeFiles(t, map[string]string{"bad.json": readTestdata(t, "invalid/patient-gender-number.json")})
		_, err := OpenBundle(Options{ID: "t", Dir: dir, Logger: quietLogger()})
		var ie *InvalidResourceError
		if !errors.As(err, &ie) || !errors.Is(err, r4.ErrInvalid) || ie.Detail == nil {
			t.Errorf("err = %v, want an *InvalidResourceError wrapping r4.ErrInvalid", err)
		}
	})
}

func TestBundleBuiltinAndDuplicates(t *testing.T) {
	patient := readTestdata(t, "r4/patient-example.json")
	other := strings.Replace(patient, `"active": true`, `"active": false`, 1)
	if other == patient {
		t.Fatal("fixture changed: cannot derive a different Patient")
	}
	var logs bytes.Buffer
	fsys := fstest.MapFS{
		"de/a.json":         {Data: []byte(patient)},
		"de/b/again.json":   {Data: []byte(patient)},
		"de/c.json":         {Data: []byte(other)},
		"de/.hidden/x.json": {Data: []byte("not json")},
		"de/notes.txt":      {Data: []byte("ignored")},
	}
	b, err := Open(Options{ID: "de-sample", Country: "DE", Profile: "de-basis", Kind: KindBundle, BuiltinDir: "de", Builtin: fsys, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if b.ID() != "de-sample" || b.Country() != "DE" || b.Profile() != "de-basis" {
		t.Errorf("identity = %s %s %s", b.ID(), b.Country(), b.Profile())
	}
	if err := b.Check(context.Background()); err != nil {
		t.Errorf("Check: %v", err)
	}
	p, err := b.Read(context.Background(), "Patient", "example")
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Active bool }
	_ = json.Unmarshal(p.JSON, &got)
	if !got.Active {
		t.Error("the first file (a.json) should win over c.json")
	}
	if n := strings.Count(logs.String(), "same type and id"); n != 1 {
		t.Errorf("logged %d duplicate warnings, want 1 (identical copies are not worth one):\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), "example") {
		t.Errorf("log holds the resource id:\n%s", logs.String())
	}
	if _, err := Open(Options{ID: "x", Kind: KindBundle, BuiltinDir: "nl", Builtin: fsys}); err == nil {
		t.Error("a missing built-in folder opened")
	}
	if _, err := Open(Options{ID: "x", Kind: KindBundle, BuiltinDir: "../de", Builtin: fsys}); err == nil {
		t.Error("a built-in name climbing out opened")
	}
}

func TestBundleMemory(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("measures a full load; not under -short or -race")
	}
	files, _ := filepath.Glob("testdata/synthea/*.json")
	var onDisk int64
	for _, f := range files {
		st, _ := os.Stat(f)
		onDisk += st.Size()
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b := openBundleDir(t, "testdata/synthea")
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d files, %d bytes on disk, %d bytes held after load", len(files), onDisk, held)
	// Compact JSON and the indexes: no parsed protos or file buffers kept.
	if held > 2*onDisk {
		t.Errorf("holds %d bytes for %d bytes of files", held, onDisk)
	}
	runtime.KeepAlive(b)
}
