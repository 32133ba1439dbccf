package fhirapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/mappings"
)

func testConverter(t testing.TB, profile string) *converter {
	t.Helper()
	eng, err := mappings.Load()
	if err != nil {
		t.Fatal(err)
	}
	lim := ToMHPLimits{SpoolDir: t.TempDir()}
	lim.defaults()
	return &converter{mapper: eng, limits: lim, maxResource: 4 << 20, profile: profile, ctx: context.Background()}
}

func readAnswer(t testing.TB, c *conversion) []byte {
	t.Helper()
	b, err := io.ReadAll(io.NewSectionReader(c.out, 0, c.size))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestConvertMatchesMapAll: the streamed answer holds exactly what mapping
// the whole input at once gives: the same resources under the same
// fullUrls, in the same order, and the same loss report.
func TestConvertMatchesMapAll(t *testing.T) {
	examples := filepath.Join("..", "..", "conformance", "examples")
	for _, tc := range []struct{ profile, file string }{
		{"de-basis", filepath.Join(examples, "de-sample", "amina.json")},
		{"nl-core", filepath.Join(examples, "nl-sample", "fatima.json")},
		{"us-core", filepath.Join(examples, "us-sample", "hassan-jacobi.json")},
		{"ips", filepath.Join(examples, "ua-sample", "amina-ips.json")},
		{"uk-core", filepath.Join("..", "federate", "testdata", "uk-core-patients.json")},
	} {
		t.Run(tc.profile, func(t *testing.T) {
			in, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			cv := testConverter(t, tc.profile)
			conv, err := cv.run(bytes.NewReader(in), int64(len(in)))
			if err != nil {
				t.Fatal(err)
			}
			defer conv.close()
			got := readAnswer(t, conv)
			if _, err := r4.Parse(got); err != nil {
				t.Fatalf("the answer is not valid R4: %v", err)
			}

			all, err := cv.mapper.(*mappings.Engine).MapAll(tc.profile, in, mappings.Options{SourceID: opToMHP})
			if err != nil {
				t.Fatal(err)
			}
			want := bundle{ResourceType: "Bundle", Type: "collection"}
			released := map[string]int{}
			for _, o := range all.Outputs {
				want.Entry = append(want.Entry, bundleEntry{FullURL: toMHPFullURL(o.Type, o.ID), Resource: o.JSON})
				released[o.Type]++
			}
			if len(all.Issues) > 0 {
				want.Entry = append(want.Entry, bundleEntry{FullURL: "urn:mhg:to-mhp:loss-report", Resource: mustJSON(mappingOutcome(all.Issues))})
			}
			var g, w map[string]any
			if err := json.Unmarshal(got, &g); err != nil {
				t.Fatal(err)
			}
			_ = json.Unmarshal(mustJSON(want), &w)
			delete(g, "timestamp")
			if d := cmp.Diff(w, g); d != "" {
				t.Fatalf("the streamed answer differs from MapAll's (-want +got):\n%s", d)
			}
			if d := cmp.Diff(released, conv.released); d != "" {
				t.Errorf("released counts (-want +got):\n%s", d)
			}
			if len(all.Outputs) < 2 {
				t.Fatalf("the example maps to %d resources: not a test of a Bundle", len(all.Outputs))
			}
		})
	}
}

// TestConvertEntriesBeforeResourceType: a Bundle that names its type after
// its entries converts the same, within the bound on what is held whole.
func TestConvertEntriesBeforeResourceType(t *testing.T) {
	in := []byte(`{"entry":[{"fullUrl":"urn:uuid:p","resource":{"resourceType":"Patient","id":"p"}},` +
		`{"resource":{"resourceType":"Condition","id":"c","subject":{"reference":"urn:uuid:p"},"code":{"text":"x"}}}],` +
		`"type":"collection","resourceType":"Bundle"}`)
	cv := testConverter(t, "uk-core")
	conv, err := cv.run(bytes.NewReader(in), int64(len(in)))
	if err != nil {
		t.Fatal(err)
	}
	defer conv.close()
	got := readAnswer(t, conv)
	if conv.released["Patient"] != 1 || conv.released["Condition"] != 1 || !bytes.Contains(got, []byte(`"reference":"Patient/p"`)) {
		t.Fatalf("released %v: %s", conv.released, got)
	}
	cv.maxResource = 64
	if _, err := cv.run(bytes.NewReader(in), int64(len(in))); asError(err).Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("entries held whole past the bound: %v", err)
	}
}

// FuzzConvert: whatever the body, a conversion answers valid JSON or a
// client error (400, 413, 422), never a server error or a panic.
func FuzzConvert(f *testing.F) {
	for _, s := range []string{
		`{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:uuid:a","resource":{"resourceType":"Patient","id":"a"}}]}`,
		`{"resourceType":"Patient","id":"a","gender":"female"}`,
		`{"resourceType":"Parameters","parameter":[{"name":"resource","resource":{"resourceType":"Patient"}}]}`,
		`{"entry":[],"resourceType":"Bundle","type":"collection"}`,
		`{"resourceType":"Bundle","type":"collection","entry":[{"resource":null},{}]} x`,
		`[1,2]`, `{"resourceType":"Bundle","entry":{}}`, ``,
	} {
		f.Add([]byte(s))
	}
	cv := testConverter(f, "uk-core")
	cv.limits.MaxEntries = 50
	cv.maxResource = 64 << 10
	f.Fuzz(func(t *testing.T, body []byte) {
		conv, err := cv.run(bytes.NewReader(body), int64(len(body)))
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || (e.Status != 400 && e.Status != 413) {
				t.Fatalf("%q: %v", body, err)
			}
			return
		}
		defer conv.close()
		if conv.unmappable != nil {
			return
		}
		if got := readAnswer(t, conv); !json.Valid(got) {
			t.Fatalf("%q: the answer is not JSON: %s", body, got)
		}
	})
}
