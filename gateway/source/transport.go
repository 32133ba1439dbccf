package source

import (
	"context"
	"errors"
	"github.com/migrant-health/mhg/gateway/telemetry"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// errRedirectRefused stops a redirect that would carry the gateway's
// credentials (and the patient id in the path) to another host.
var errRedirectRefused = errors.New("redirect to another host refused")

const maxRedirects = 5

// newHTTPClient builds the client a "fhir" source uses when Options gives
// none. The per-call deadline comes from the request context; the transport
// timeouts only bound the phases a context deadline cannot tell apart.
func newHTTPClient(sourceID string, base *url.URL) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   16,
	}
	// otelhttp records the request URL as url.full, and FHIR URLs hold
	// patient ids in the path and search values in the query. The outer
	// layer hands otelhttp a reduced URL; the inner one puts the real URL
	// back just before the request leaves.
	instrumented := otelhttp.NewTransport(restoreURL{next: tr},
		otelhttp.WithPropagators(propagation.TraceContext{}),
		otelhttp.WithSpanOptions(trace.WithAttributes(telemetry.AttrSourceID.String(sourceID))),
	)
	return &http.Client{
		Transport: redactURL{next: instrumented, basePath: strings.TrimSuffix(base.EscapedPath(), "/")},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return errRedirectRefused
			}
			if !sameOrigin(req.URL, base) {
				return errRedirectRefused
			}
			return nil
		},
	}
}

// sameOrigin tells whether u has the scheme and host of base, so that
// credentials and paths with patient ids go nowhere else.
func sameOrigin(u, base *url.URL) bool {
	return strings.EqualFold(u.Scheme, base.Scheme) && strings.EqualFold(u.Host, base.Host)
}

type realURLKey struct{}

// redactURL replaces a request's URL by [base]/[type], or [base]/[type]/:id
// for reads, before the telemetry layer sees it.
type redactURL struct {
	next     http.RoundTripper
	basePath string
}

func (t redactURL) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx := context.WithValue(r.Context(), realURLKey{}, r.URL)
	r2 := r.WithContext(ctx)
	r2.URL = redactedURL(r.URL, t.basePath)
	return t.next.RoundTrip(r2)
}

// redactedURL keeps scheme, host, the base path and the first path segment
// after it (the resource type, "metadata"); later segments become ":id"
// and the query goes.
func redactedURL(u *url.URL, basePath string) *url.URL {
	rest := strings.TrimPrefix(u.EscapedPath(), basePath)
	rest = strings.TrimPrefix(rest, "/")
	first, more, _ := strings.Cut(rest, "/")
	if !resourceTypePattern.MatchString(first) && first != "metadata" {
		first = ":path"
	}
	p := basePath + "/" + first
	if more != "" {
		p += "/:id"
	}
	if rest == "" {
		p = basePath + "/"
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host, Path: p}
}

// restoreURL undoes redactURL below the telemetry layer.
type restoreURL struct{ next http.RoundTripper }

func (t restoreURL) RoundTrip(r *http.Request) (*http.Response, error) {
	real, ok := r.Context().Value(realURLKey{}).(*url.URL)
	if !ok {
		return t.next.RoundTrip(r)
	}
	r2 := r.Clone(r.Context())
	r2.URL = real
	return t.next.RoundTrip(r2)
}
