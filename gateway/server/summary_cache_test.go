package server

import (
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/config"
	"github.com/migrant-health/mhg/gateway/federate"
	"github.com/migrant-health/mhg/gateway/fhirapi"
	"github.com/migrant-health/mhg/policies"
)

// revisionRE finds the revision in a policy bundle's .manifest, whatever
// the shipped bundle's revision is.
var revisionRE = regexp.MustCompile(`"revision":\s*"[^"]*"`)

// A warm Patient/$summary is the document rendered before only while
// every input is as it was, and every answer, reused or not, is audited
// before it leaves: the same request twice gives one rendering (the same
// Bundle id) and two AuditEvents; a new policy revision (the shipped
// policies, only the revision changed) gives a new rendering on the next
// request; with cache.document_bytes -1 every summary is rendered afresh.
//
// Not parallel: the policy watcher's metrics go through the process-wide
// OpenTelemetry meter provider.
func TestSummaryDocumentReuse(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "policies")
	if err := os.CopyFS(dir, policies.FS); err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(dir, ".manifest")
	writeAtomic(t, manifest, revisionRE.ReplaceAllString(readFile(t, manifest), `"revision": "doc-1"`))
	g := startGateway(t, func(c *config.Config) {
		c.Policy.Dir = dir
		c.Policy.Watch = true
		c.Policy.PollInterval = 50 * time.Millisecond
	}, Options{})
	tok := g.token(t, "DE", "clinician", "TREAT")
	path := "/Patient/$summary?identifier=" + url.QueryEscape(aminaPassport)
	summary := func() (string, string) {
		t.Helper()
		d := parseDoc(t, g.get(t, path, tok))
		return d.bundle["id"].(string), string(d.raw)
	}

	id1, body1 := summary()
	before := len(auditEvents(t, g))
	id2, body2 := summary()
	if id1 != id2 || body1 != body2 {
		t.Fatalf("the same summary was rendered twice (bundles %s, %s)", id1, id2)
	}
	evs := auditEvents(t, g)
	if n := len(evs) - before; n != 1 {
		t.Fatalf("%d AuditEvents for a reused summary, want 1: a reused document is a disclosure too", n)
	}
	if last := evs[len(evs)-1]; last["outcome"] != "0" || !strings.Contains(string(mustMarshal(t, last)), `"released:Condition"`) {
		t.Fatalf("the reused summary's AuditEvent does not record a release: %v", last)
	}
	if rev := lastRevision(t, g); rev != "doc-1" {
		t.Fatalf("revision %q, want doc-1", rev)
	}

	writeAtomic(t, manifest, revisionRE.ReplaceAllString(readFile(t, manifest), `"revision": "doc-2"`))
	eventually(t, 10*time.Second, "the new revision serves", func() (bool, string) {
		g.get(t, "/Patient?identifier="+url.QueryEscape(aminaPassport), tok)
		rev := lastRevision(t, g)
		return rev == "doc-2", rev
	})
	id3, _ := summary()
	if id3 == id1 {
		t.Fatal("the document rendered under revision doc-1 was served under doc-2")
	}
	if id4, _ := summary(); id4 != id3 {
		t.Fatalf("the summary under doc-2 was rendered twice (bundles %s, %s)", id3, id4)
	}

	off := startGateway(t, func(c *config.Config) { c.Cache.DocumentBytes = -1 }, Options{})
	tokOff := off.token(t, "DE", "clinician", "TREAT")
	a := parseDoc(t, off.get(t, path, tokOff))
	b := parseDoc(t, off.get(t, path, tokOff))
	if a.bundle["id"] == b.bundle["id"] {
		t.Fatal("with cache.document_bytes -1, two summaries share a rendering")
	}
}

// The defaults of the cache bounds are the packages' own, and the auth
// section's bound reaches the verifier's options.
func TestCacheBoundSettings(t *testing.T) {
	d := config.Default()
	if d.Auth.TokenCacheEntries != auth.DefaultTokenCacheEntries || d.Cache.RenderedBytes != fhirapi.DefaultRenderedBytes ||
		d.Cache.DocumentBytes != federate.DefaultDocumentBytes {
		t.Fatalf("defaults %d, %d, %d; the packages' are %d, %d, %d", d.Auth.TokenCacheEntries, d.Cache.RenderedBytes, d.Cache.DocumentBytes,
			auth.DefaultTokenCacheEntries, fhirapi.DefaultRenderedBytes, federate.DefaultDocumentBytes)
	}
	a := d.Auth
	a.TokenCacheEntries = -1
	if got := AuthOptions(a).TokenCacheEntries; got != -1 {
		t.Fatalf("auth.token_cache_entries -1 gave TokenCacheEntries %d", got)
	}
}
