package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Errors of FetchAttachment callers branch on.
var (
	// ErrForeignURL: an attachment url names a server other than the
	// source's own base URL (or a path outside it); it is never fetched.
	ErrForeignURL = errors.New("attachment url is not under the source's base URL")
	// ErrTooLarge: the attachment is larger than the caller's bound.
	ErrTooLarge = errors.New("attachment exceeds the size bound")
)

// FetchAttachment fetches the bytes an attachment url of one of the
// source's resources points to, with the source's own HTTP client and
// credentials. The url may be relative to the base URL (Binary/1); an
// absolute url must have the base's scheme, host and port and a path
// under the base path, else the error wraps ErrForeignURL and nothing is
// sent. More than limit bytes wrap ErrTooLarge. Errors never hold the url.
func (s *FHIR) FetchAttachment(ctx context.Context, rawURL string, limit int64) ([]byte, string, error) {
	u, err := attachmentURL(s.base, rawURL)
	if err != nil {
		return nil, "", err
	}
	var body []byte
	var ctype string
	// Too large is the caller's bound, not the source failing: it does
	// not count against the breaker.
	tooLarge := false
	err = s.call(ctx, "attachment", "Binary", func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return fmt.Errorf("build request: %w", ErrRejected)
		}
		req.Header.Set("Accept", "*/*")
		if s.authorization != "" {
			req.Header.Set("Authorization", s.authorization)
		}
		resp, err := s.client.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return ctxError(ctx)
			}
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			return s.statusError(resp).err
		}
		if resp.ContentLength > limit {
			tooLarge = true
			return nil
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
		if err != nil {
			return fmt.Errorf("%w: reading attachment: %v", ErrUnavailable, err)
		}
		if int64(len(b)) > limit {
			tooLarge = true
			return nil
		}
		body, ctype = b, resp.Header.Get("Content-Type")
		return nil
	})
	switch {
	case err != nil:
		return nil, "", err
	case tooLarge:
		return nil, "", ErrTooLarge
	}
	return body, ctype, nil
}

// attachmentURL resolves an attachment url against the source's base: the
// URL to fetch, or ErrForeignURL when it is not on the base's scheme, host
// and port with a path under the base path.
func attachmentURL(base *url.URL, rawURL string) (*url.URL, error) {
	dir := *base
	dir.Path = strings.TrimSuffix(dir.Path, "/") + "/"
	dir.RawPath = ""
	u, err := dir.Parse(strings.TrimSpace(rawURL))
	if err != nil || !sameOrigin(u, base) || !underBase(u, base) || encodedDots(u) {
		return nil, ErrForeignURL
	}
	u.Fragment, u.RawFragment, u.User = "", "", nil
	return u, nil
}

// encodedDots tells whether u's path holds an encoded dot or slash, which
// a server could decode into a path outside the base after the check.
func encodedDots(u *url.URL) bool {
	p := strings.ToLower(u.EscapedPath())
	return strings.Contains(p, "%2e") || strings.Contains(p, "%2f") || strings.Contains(p, "%5c")
}
