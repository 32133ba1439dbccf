package fhirapi

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/gateway/cache"
)

// A resource released again exactly as before is served from its earlier
// rendering; any change (here a redaction) renders afresh; either way the
// bytes are what jsonformat makes.
func TestRenderedJSON(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "validate", "patient.json"))
	if err != nil {
		t.Fatal(err)
	}
	h := &Handler{rendered: newRendered(0)}
	res, err := r4.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	want, err := r4.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		got, err := h.marshal(res)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("rendering: %v\n%s\nwant\n%s", err, got, want)
		}
	}
	if n := renderedEntries(h); n != 1 {
		t.Fatalf("%d renderings kept, want 1", n)
	}

	redacted, _ := r4.Parse(raw)
	p := r4.Resource(redacted)
	applyElements(p, []string{"id", "meta"})
	wantRedacted, err := r4.Marshal(redacted)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(wantRedacted, want) {
		t.Fatal("the redaction changed nothing: the test proves nothing")
	}
	got, err := h.marshal(redacted)
	if err != nil || !bytes.Equal(got, wantRedacted) {
		t.Fatalf("a changed resource served its earlier rendering: %v\n%s", err, got)
	}
	if n := renderedEntries(h); n != 2 {
		t.Fatalf("%d renderings kept, want 2", n)
	}
}

// Renderings are bounded in bytes.
func TestRenderedBounded(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "validate", "patient.json"))
	if err != nil {
		t.Fatal(err)
	}
	one, _ := r4.Parse(raw)
	js, _ := r4.Marshal(one)
	h := &Handler{rendered: newRendered(int64(3 * (len(js) + cache.BytesOverhead)))}
	for _, id := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		res, err := r4.Parse(bytes.Replace(raw, []byte(`"id": "mhp-pat-1"`), []byte(`"id": "`+id+`"`), 1))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.marshal(res); err != nil {
			t.Fatal(err)
		}
	}
	if n := renderedEntries(h); n > 3 {
		t.Fatalf("%d renderings kept within room for 3", n)
	}
	if off := (&Handler{rendered: newRendered(-1)}); off.rendered != nil {
		t.Fatal("negative bound keeps renderings")
	}
}

func renderedEntries(h *Handler) int {
	return h.rendered.Len()
}
