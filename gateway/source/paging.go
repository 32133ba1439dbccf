package source

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// PartialError is what Search returns, beside the resources of the pages
// it read, when it stopped before the source's last page: at the page
// bound (Cause ErrTruncated) or at a next link it cannot follow (Cause
// ErrNextLink). errors.Is sees the cause.
type PartialError struct {
	// Pages is how many pages were read.
	Pages int
	// Cause says why the search stopped: ErrTruncated or ErrNextLink.
	Cause error
}

func (e *PartialError) Error() string {
	return fmt.Sprintf("stopped after %d pages: %v", e.Pages, e.Cause)
}

// Unwrap returns the cause.
func (e *PartialError) Unwrap() error { return e.Cause }

// AsPartial returns the PartialError in err's chain, if any.
func AsPartial(err error) (*PartialError, bool) {
	var pe *PartialError
	ok := errors.As(err, &pe)
	return pe, ok
}

// ErrNextLink: a search page's next link cannot be followed (it is not an
// http(s) URL, or it names another server and a path outside the source's
// base). Search returns the resources of the pages it read with a
// *PartialError wrapping it, so a caller can serve them with a warning.
var ErrNextLink = errors.New("next link cannot be followed")

// nextPage resolves a page's next link (absolute, host-relative or
// relative to the page) to the URL the gateway fetches. A link on the
// source's own scheme and host is followed as it is. A link that names
// another scheme, host or port (a server that writes its host as
// 127.0.0.1 when configured as localhost, a reverse proxy, a DNS alias) is
// rebased onto the configured base when its path lies under the base
// path: the request still goes only to the configured server. Anything
// else wraps ErrNextLink.
func nextPage(page, base *url.URL, link string) (*url.URL, error) {
	nu, err := page.Parse(strings.TrimSpace(link))
	if err != nil || (nu.Scheme != "http" && nu.Scheme != "https") || nu.Host == "" {
		return nil, fmt.Errorf("next link is not an http(s) URL: %w", ErrNextLink)
	}
	nu.Fragment, nu.RawFragment = "", ""
	if sameOrigin(nu, base) {
		return nu, nil
	}
	if !underBase(nu, base) {
		return nil, fmt.Errorf("next link names another server and a path outside the base: %w", ErrNextLink)
	}
	rebased := *nu
	rebased.Scheme, rebased.Host, rebased.User = base.Scheme, base.Host, nil
	return &rebased, nil
}

// underBase tells whether u's path is the base path or below it.
func underBase(u, base *url.URL) bool {
	bp := strings.TrimSuffix(base.EscapedPath(), "/")
	p := u.EscapedPath()
	return bp == "" || p == bp || strings.HasPrefix(p, bp+"/")
}
