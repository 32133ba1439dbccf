package authz

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"
)

// maxBundleBytes bounds a downloaded bundle (and each file in it).
const maxBundleBytes = 64 << 20

// bundleClient polls an OPA bundle server: a GET of the bundle URL with
// If-None-Match, a 304 meaning "no change", a 200 carrying a gzipped
// tarball that OPA's bundle reader parses (.manifest, modules, data.json).
//
// OPA's own downloader (v1/download) would do the same but pulls the OCI
// registry client and cloud credential plugins into the build; the bundle
// format, the reader and the HTTP contract are OPA's either way.
type bundleClient struct {
	url    string
	client *http.Client

	mu   sync.Mutex // guards etag
	etag string
}

func newBundleClient(rawURL string) (*bundleClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("want an absolute http(s) URL, got %q", rawURL)
	}
	return &bundleClient{url: u.String(), client: &http.Client{Timeout: 30 * time.Second}}, nil
}

// errNotModified: the server has nothing newer than the last bundle.
var errNotModified = errors.New("bundle not modified")

// fetch downloads the bundle unless it is unchanged. The ETag is kept only
// once the caller accepted the bundle (commit), so a bundle that failed to
// activate is not asked for again until it changes, and one that failed to
// download is.
func (b *bundleClient) fetch(ctx context.Context) (*bundle.Bundle, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.url, nil)
	if err != nil {
		return nil, "", err
	}
	b.mu.Lock()
	if b.etag != "" {
		req.Header.Set("If-None-Match", b.etag)
	}
	b.mu.Unlock()
	req.Header.Set("Accept", "application/gzip, application/octet-stream")
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("download: %w", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		return nil, "", errNotModified
	case http.StatusOK:
	default:
		return nil, "", fmt.Errorf("download: server answered %s", resp.Status)
	}
	body := io.LimitReader(resp.Body, maxBundleBytes+1)
	bdl, err := bundle.NewReader(body).
		WithSizeLimitBytes(maxBundleBytes).
		WithBundleEtag(resp.Header.Get("ETag")).
		Read()
	if err != nil {
		return nil, "", fmt.Errorf("bundle: %w", err)
	}
	return &bdl, resp.Header.Get("ETag"), nil
}

func (b *bundleClient) commit(etag string) {
	b.mu.Lock()
	b.etag = etag
	b.mu.Unlock()
}

// reloadBundle downloads and activates the bundle if it changed.
func (e *Engine) reloadBundle(ctx context.Context) error {
	where := "bundle " + e.bundles.url
	bdl, etag, err := e.bundles.fetch(ctx)
	if errors.Is(err, errNotModified) {
		return nil
	}
	if err != nil {
		return e.reject(where, failed(stageRead, err))
	}
	// A bad bundle is not fetched again until the server changes it.
	e.bundles.commit(etag)
	set, err := fromBundle(bdl)
	if err != nil {
		return e.reject(where, err)
	}
	return e.activate(ctx, where, set)
}

// fingerprintHash accumulates a directory fingerprint.
type fingerprintHash struct{ h hash.Hash }

func newFingerprint() *fingerprintHash { return &fingerprintHash{sha256.New()} }

func (f *fingerprintHash) add(name string, size, mtime int64) {
	fmt.Fprintf(f.h, "%s\x00%d\x00%d\n", name, size, mtime)
}

func (f *fingerprintHash) sum() string { return hex.EncodeToString(f.h.Sum(nil)) }
