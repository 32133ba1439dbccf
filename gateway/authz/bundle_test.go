package authz

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"
)

// testBundleServer serves one bundle at /bundles/mhg.tar.gz with an ETag,
// as an OPA bundle server (or nginx in front of `opa build` output) does.
type testBundleServer struct {
	srv *httptest.Server

	mu       sync.Mutex
	body     []byte
	status   int
	count    int
	notModif int
}

func bundleServer(t *testing.T) *testBundleServer {
	t.Helper()
	s := &testBundleServer{status: http.StatusOK}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.count++
		if r.URL.Path != "/bundles/mhg.tar.gz" {
			http.NotFound(w, r)
			return
		}
		if s.status != http.StatusOK {
			w.WriteHeader(s.status)
			return
		}
		sum := sha256.Sum256(s.body)
		etag := `"` + hex.EncodeToString(sum[:8]) + `"`
		if r.Header.Get("If-None-Match") == etag {
			s.notModif++
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		w.Header().Set("Content-Type", "application/gzip")
		_, _ = w.Write(s.body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *testBundleServer) url() string { return s.srv.URL + "/bundles/mhg.tar.gz" }

func (s *testBundleServer) serve(b []byte) {
	s.mu.Lock()
	s.body, s.status = b, http.StatusOK
	s.mu.Unlock()
}

func (s *testBundleServer) setStatus(code int) {
	s.mu.Lock()
	s.status = code
	s.mu.Unlock()
}

func (s *testBundleServer) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

func (s *testBundleServer) notModified() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.notModif
}

// buildBundle packs a policy directory as `opa build` does: one data.json
// with the data tree, the modules, a .manifest with the revision.
func buildBundle(t *testing.T, dir, revision string) []byte {
	t.Helper()
	set, err := loadFS(os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	data := map[string]any{}
	for k, v := range set.data {
		if k != "mhg" { // mhg holds only the index, which the engine builds
			data[k] = v
		}
	}
	b := bundle.Bundle{
		Manifest: bundle.Manifest{Revision: revision, Roots: &[]string{"mhg", "data"}},
		Data:     data,
	}
	for name, raw := range set.raw {
		b.Modules = append(b.Modules, bundle.ModuleFile{URL: "/" + name, Path: "/" + name, Raw: raw, Parsed: set.modules[name]})
	}
	var buf bytes.Buffer
	if err := bundle.NewWriter(&buf).Write(b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestBundleServer(t *testing.T) {
	t.Parallel()
	dir := copyBuiltin(t)
	srv := bundleServer(t)
	srv.serve(buildBundle(t, dir, "bundle-1"))
	e := newEngine(t, Options{BundleURL: srv.url(), PollInterval: 20 * time.Millisecond})
	waitFor(t, func() bool { return e.Revision() == "bundle-1" })
	if err := e.Ready(); err != nil {
		t.Fatalf("Ready() = %v", err)
	}
	d := decide(t, e, queryInput(clinician("DE"), "Patient", "UA"))
	if !d.Allow || d.Revision != "bundle-1" {
		t.Fatalf("decision from the bundle = %+v", d)
	}
	// Unchanged bundles are not downloaded again.
	waitFor(t, func() bool { return srv.notModified() >= 2 || e.Ready() != nil })
	if err := e.Ready(); err != nil {
		t.Fatalf("Ready() = %v", err)
	}

	// A new revision is activated.
	addAgreement(t, dir, "de-fr-2026", "DE", "FR")
	srv.serve(buildBundle(t, dir, "bundle-2"))
	waitFor(t, func() bool { return e.Revision() == "bundle-2" || errors.Is(e.Ready(), ErrStalePolicy) })
	if d := decide(t, e, queryInput(clinician("DE"), "Patient", "FR")); !d.Allow || d.Revision != "bundle-2" {
		t.Errorf("DE to FR under the new revision: %+v", d)
	}

	// A revision whose tests fail is rejected; the last good one stays.
	writeFile(t, dir, "mhg/authz/wrong_test.rego", "package mhg.authz_test\n\ntest_wrong if false\n")
	srv.serve(buildBundle(t, dir, "bundle-3"))
	waitFor(t, func() bool { return errors.Is(e.Ready(), ErrStalePolicy) })
	if e.Revision() != "bundle-2" || !errors.Is(e.Ready(), ErrPolicyTests) {
		t.Errorf("revision %q, ready %v", e.Revision(), e.Ready())
	}

	// A server error is a failed reload too, and says so.
	srv.setStatus(http.StatusBadGateway)
	waitFor(t, func() bool { return strings.Contains(e.Ready().Error(), "502") })
	if e.Revision() != "bundle-2" {
		t.Errorf("revision %q after a server error", e.Revision())
	}

	// Garbage is not a bundle.
	srv.serve([]byte("not a tarball"))
	if err := e.Reload(context.Background()); err == nil || !errors.Is(err, ErrPolicyLoad) {
		t.Errorf("Reload of garbage = %v", err)
	}
	if e.Revision() != "bundle-2" {
		t.Errorf("revision %q after garbage", e.Revision())
	}
}
