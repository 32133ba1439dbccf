package source

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// FetchAttachment asks only the source's own server, under its base path,
// and never past the bound; every other url is refused before any request.
func TestFetchAttachment(t *testing.T) {
	var outside atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/fhir/") {
			outside.Add(1)
		}
		w.Header().Set("Content-Type", "application/pdf")
		_, _ = w.Write([]byte("%PDF " + r.URL.Path))
	}))
	t.Cleanup(srv.Close)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { outside.Add(1) }))
	t.Cleanup(other.Close)
	s := newTestFHIR(t, Options{BaseURL: srv.URL + "/fhir"})
	alias := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)

	tests := []struct {
		url   string
		limit int64
		body  string
		err   error
	}{
		{"Binary/1", 100, "%PDF /fhir/Binary/1", nil},
		{srv.URL + "/fhir/Binary/2", 100, "%PDF /fhir/Binary/2", nil},
		{"Binary/1", 5, "", ErrTooLarge},
		{other.URL + "/fhir/Binary/1", 100, "", ErrForeignURL},
		{alias + "/fhir/Binary/1", 100, "", ErrForeignURL},
		{srv.URL + "/other/Binary/1", 100, "", ErrForeignURL},
		{"../admin", 100, "", ErrForeignURL},
		{"/admin", 100, "", ErrForeignURL},
		{"Binary/%2e%2e/%2e%2e/admin", 100, "", ErrForeignURL},
		{"//" + strings.TrimPrefix(other.URL, "http://") + "/fhir/Binary/1", 100, "", ErrForeignURL},
		{"ftp://example.org/x", 100, "", ErrForeignURL},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			b, ct, err := s.FetchAttachment(context.Background(), tt.url, tt.limit)
			if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
				t.Fatalf("error %v, want %v", err, tt.err)
			}
			if string(b) != tt.body {
				t.Errorf("body %q, want %q", b, tt.body)
			}
			if tt.err == nil && ct != "application/pdf" {
				t.Errorf("content type %q", ct)
			}
			if err != nil && strings.Contains(err.Error(), "Binary") {
				t.Errorf("error names the url: %v", err)
			}
		})
	}
	if n := outside.Load(); n != 0 {
		t.Errorf("%d requests outside the base", n)
	}
	// A bound exceeded is the caller's limit, not a failing source.
	if st := s.State(); st != "closed" {
		t.Errorf("breaker %s", st)
	}
}

// Whatever an upstream resource writes as an attachment url, what
// attachmentURL accepts is on the base's scheme, host and port, under its
// path, without user info.
func FuzzAttachmentURL(f *testing.F) {
	for _, s := range []string{"Binary/1", "https://ehr.example/fhir/Binary/1", "../x", "//evil/fhir/x",
		"https://user@ehr.example/fhir/x", "Binary/%2e%2e/x", "https://ehr.example:444/fhir/x", "/fhir/x"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://ehr.example/fhir")
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := attachmentURL(base, raw)
		if err != nil {
			return
		}
		if u.Scheme != "https" || u.Host != "ehr.example" || u.User != nil ||
			!strings.HasPrefix(u.EscapedPath(), "/fhir") || !strings.HasPrefix(u.String(), "https://ehr.example/fhir") {
			t.Fatalf("%q accepted as %q", raw, u)
		}
	})
}
