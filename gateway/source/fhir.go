package source

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"

	"github.com/migrant-health/mhg/gateway/telemetry"
)

const (
	defaultMaxPages         = 10
	defaultMaxResponseBytes = 16 << 20
	defaultBreakerFailures  = 5
	defaultBreakerOpenFor   = 30 * time.Second
	// maxThrottleWaits bounds how often one GET waits out a 429 or a 503
	// with Retry-After; the call's deadline bounds how long.
	maxThrottleWaits = 5
	fhirJSON         = "application/fhir+json"
)

var (
	resourceTypePattern = regexp.MustCompile(`^[A-Z][A-Za-z]{1,63}$`)
	fhirIDPattern       = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)
)

// FHIR is a national FHIR R4 REST server. Every call has a deadline (the
// source's Timeout, or Options.DefaultTimeout, within the caller's), GETs
// are retried on transient failures, a circuit breaker stops calls to a
// source that keeps failing, and every resource it returns has been
// validated with the R4 codec. A source that throttles (429, or 503 with
// Retry-After) is waited for within the deadline, whatever Retries says,
// and never counts towards the breaker; an optional token bucket
// (Options.RateLimit) spaces the calls out so that it need not. It is
// safe for concurrent use.
type FHIR struct {
	id, country, profile string
	base                 *url.URL
	client               *http.Client
	authorization        string
	timeout              time.Duration
	retries              int
	maxPages             int
	maxBytes             int64
	backoff, maxBackoff  time.Duration
	breaker              *gobreaker.CircuitBreaker[struct{}]
	metrics              *instruments
	log                  *slog.Logger
	now                  func() time.Time
	patientMatch         string
	// limiter spaces out calls across all requests; nil means no limit.
	limiter *rate.Limiter
	// caps holds the search parameters of the CapabilityStatement.
	caps capabilities
}

// NewFHIR builds the connector of a "fhir" source. It reads the source's
// credentials files now; it does not contact the source (Check does).
func NewFHIR(opts Options) (*FHIR, error) {
	base, err := url.Parse(strings.TrimSuffix(opts.BaseURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("source %s: the base URL must be an absolute http(s) URL", opts.ID)
	}
	if base.RawQuery != "" || base.Fragment != "" {
		return nil, fmt.Errorf("source %s: the base URL must not have a query or fragment", opts.ID)
	}
	authz, err := authorization(opts)
	if err != nil {
		return nil, err
	}
	metrics, err := newInstruments(opts.MeterProvider, opts.ID)
	if err != nil {
		return nil, err
	}
	s := &FHIR{
		metrics: metrics,
		id:      opts.ID, country: opts.Country, profile: opts.Profile, patientMatch: opts.PatientMatch,
		base:          base,
		client:        opts.HTTPClient,
		authorization: authz,
		timeout:       firstPositive(opts.Timeout, defaultTimeout),
		retries:       max(opts.Retries, 0),
		maxPages:      opts.MaxPages,
		maxBytes:      opts.MaxResponseBytes,
		backoff:       firstPositive(opts.RetryBackoff, defaultRetryBackoff),
		maxBackoff:    firstPositive(opts.MaxRetryBackoff, defaultMaxRetryBackoff),
		log:           opts.logger().With(string(telemetry.AttrSourceID), opts.ID),
		now:           opts.now(),
	}
	if s.maxPages <= 0 {
		s.maxPages = defaultMaxPages
	}
	if s.maxBytes <= 0 {
		s.maxBytes = defaultMaxResponseBytes
	}
	if s.client == nil {
		s.client = newHTTPClient(opts.ID, base)
	}
	if rl := opts.RateLimit; rl.PerSecond > 0 {
		burst := rl.Burst
		if burst <= 0 {
			burst = max(1, int(math.Ceil(rl.PerSecond)))
		}
		s.limiter = rate.NewLimiter(rate.Limit(rl.PerSecond), burst)
	}
	failures := opts.Breaker.Failures
	if failures <= 0 {
		failures = defaultBreakerFailures
	}
	s.breaker = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        opts.ID,
		MaxRequests: 1,
		Timeout:     firstPositive(opts.Breaker.OpenFor, defaultBreakerOpenFor),
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= uint32(failures) },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			s.log.Warn("source circuit breaker", "from", from.String(), "to", to.String())
			s.metrics.breakerState(context.Background(), to.String())
		},
		// Only the source's own trouble counts: a 404, a refused request or
		// a bad resource says nothing about whether the source is up.
		IsSuccessful: func(err error) bool {
			return !errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrTimeout)
		},
		// A caller that gave up says nothing about the source either, and
		// a source that asks the gateway to wait is working as it should.
		IsExcluded: func(err error) bool {
			return errors.Is(err, context.Canceled) || errors.Is(err, ErrThrottled)
		},
	})
	s.metrics.breakerState(context.Background(), s.breaker.State().String())
	return s, nil
}

func authorization(spec Options) (string, error) {
	switch spec.Auth.Type {
	case "":
		return "", nil
	case "bearer":
		tok, err := readSecret(spec.Auth.TokenFile)
		if err != nil {
			return "", fmt.Errorf("source %s: bearer token file: %w", spec.ID, err)
		}
		return "Bearer " + tok, nil
	case "basic":
		if spec.Auth.Username == "" {
			return "", fmt.Errorf("source %s: basic auth without a username", spec.ID)
		}
		pw, err := readSecret(spec.Auth.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("source %s: basic auth password file: %w", spec.ID, err)
		}
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(spec.Auth.Username+":"+pw)), nil
	default:
		return "", fmt.Errorf("source %s: auth type %q is not \"\", \"bearer\" or \"basic\"", spec.ID, spec.Auth.Type)
	}
}

func readSecret(path string) (string, error) {
	if path == "" {
		return "", errors.New("not set")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", errors.New("file is empty")
	}
	if strings.ContainsAny(s, "\r\n") {
		return "", errors.New("file holds more than one line")
	}
	return s, nil
}

func firstPositive(ds ...time.Duration) time.Duration {
	for _, d := range ds {
		if d > 0 {
			return d
		}
	}
	return 0
}

// ID returns the configured source id.
func (s *FHIR) ID() string { return s.id }

// Country returns the source's ISO 3166-1 alpha-2 country code.
func (s *FHIR) Country() string { return s.country }

// Profile returns the national profile id of the source's resources.
func (s *FHIR) Profile() string { return s.profile }

// State returns the circuit breaker's state for metrics and readiness:
// "closed" (calls go through), "open" (calls fail at once with
// ErrUnavailable until the breaker's OpenFor has passed) or "half-open" (one
// trial call decides whether it closes again).
func (s *FHIR) State() string { return s.breaker.State().String() }

// Read does GET [base]/[type]/[id]. An id that cannot be a FHIR id is
// reported as ErrNotFound without asking the source.
func (s *FHIR) Read(ctx context.Context, resourceType, id string) (Resource, error) {
	if !resourceTypePattern.MatchString(resourceType) {
		return Resource{}, fmt.Errorf("source %s: read: invalid resource type: %w", s.id, ErrNotFound)
	}
	if !fhirIDPattern.MatchString(id) {
		return Resource{}, fmt.Errorf("source %s: read %s: invalid id: %w", s.id, resourceType, ErrNotFound)
	}
	var res Resource
	err := s.call(ctx, "read", resourceType, func(ctx context.Context) error {
		body, err := s.get(ctx, s.base.JoinPath(resourceType, id), "read", resourceType)
		if err != nil {
			return err
		}
		res, err = parseReadBody(body, resourceType)
		return err
	})
	if err != nil {
		return Resource{}, fmt.Errorf("source %s: read %s: %w", s.id, resourceType, err)
	}
	return res, nil
}

// Search does GET [base]/[type]?params and follows the Bundle's next links
// on the source's server, at most MaxPages of them; a next link written
// with another host name for the same base is rebased onto the configured
// base (nextPage). It returns the entries of
// resourceType in match mode, in the source's order; _include results and
// OperationOutcome entries are dropped. When more pages remain past the
// bound, or a next link cannot be followed, it returns what it gathered
// with a *PartialError (wrapping ErrTruncated or ErrNextLink) that says how
// many pages were read. Entries that are not valid R4 are left out and
// reported with a *DroppedError (ErrDropped) beside the rest, unless
// nothing else came back (then the answer is invalid: ErrInvalidResponse).
func (s *FHIR) Search(ctx context.Context, resourceType string, params url.Values) ([]Resource, error) {
	if !resourceTypePattern.MatchString(resourceType) {
		return nil, fmt.Errorf("source %s: search: invalid resource type: %w", s.id, ErrRejected)
	}
	var out []Resource
	var dropped []error
	// stopped is set when the search ends before the source's last page;
	// what was read is returned with it.
	var stopped *PartialError
	err := s.call(ctx, "search", resourceType, func(ctx context.Context) error {
		out, dropped, stopped = nil, nil, nil
		u := s.base.JoinPath(resourceType)
		u.RawQuery = params.Encode()
		seen := map[string]bool{u.String(): true}
		for page := 0; ; page++ {
			body, err := s.get(ctx, u, "search", resourceType)
			if err != nil {
				return err
			}
			res, next, bad, err := parseSearchPage(body, resourceType)
			if err != nil {
				return fmt.Errorf("page %d: %w", page+1, err)
			}
			for _, b := range bad {
				dropped = append(dropped, fmt.Errorf("page %d: %w", page+1, b))
			}
			out = append(out, res...)
			if next == "" {
				return nil
			}
			nu, err := nextPage(u, s.base, next)
			if err != nil {
				// What was read is kept; the warning says the rest is
				// missing.
				stopped = &PartialError{Pages: page + 1, Cause: ErrNextLink}
				return nil
			}
			if seen[nu.String()] {
				// A server that links a page to itself would page forever.
				return nil
			}
			if page >= s.maxPages {
				stopped = &PartialError{Pages: page + 1, Cause: ErrTruncated}
				return nil
			}
			seen[nu.String()] = true
			u = nu
		}
	})
	if err != nil {
		return nil, fmt.Errorf("source %s: search %s: %w", s.id, resourceType, err)
	}
	if len(dropped) > 0 && len(out) == 0 {
		// Nothing valid came back: the answer is invalid, not incomplete.
		return nil, fmt.Errorf("source %s: search %s: %w", s.id, resourceType, dropped[0])
	}
	var partial []error
	if stopped != nil {
		s.log.Warn("search stopped before the last page", "type", resourceType, "pages", stopped.Pages, "error.type", telemetry.ErrorType(stopped.Cause))
		partial = append(partial, stopped)
	}
	if len(dropped) > 0 {
		s.log.Warn("resources that are not valid R4 left out of a search", "type", resourceType, "count", len(dropped), "first", dropped[0].Error())
		partial = append(partial, &DroppedError{Invalid: dropped})
	}
	if len(partial) > 0 {
		return out, fmt.Errorf("source %s: search %s: %w", s.id, resourceType, errors.Join(partial...))
	}
	return out, nil
}

// PatientMatch says how the gateway searches this source by
// demographics (Options.PatientMatch; PatientMatchSearch when not set).
func (s *FHIR) PatientMatch() string {
	if s.patientMatch == "" {
		return PatientMatchSearch
	}
	return s.patientMatch
}

// MatchPatients does POST [base]/Patient/$match (IHE PDQm ITI-119) with
// the Parameters given and returns the Patients of the searchset. It is
// not retried (the body is the patient's demographics: one copy is sent);
// a 4xx answer (the source refusing under its rules) wraps ErrRejected.
func (s *FHIR) MatchPatients(ctx context.Context, parameters []byte) ([]Resource, error) {
	var out []Resource
	err := s.call(ctx, "match", "Patient", func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base.JoinPath("Patient", "$match").String(), bytes.NewReader(parameters))
		if err != nil {
			return fmt.Errorf("build request: %w", ErrRejected)
		}
		req.Header.Set("Content-Type", fhirJSON)
		body, aerr := s.do(ctx, req, "match", "Patient", 0)
		if aerr != nil {
			return aerr.err
		}
		res, _, bad, err := parseSearchPage(body, "Patient")
		if err != nil {
			return err
		}
		if len(bad) > 0 {
			// A candidate list with a hole is not one to match against.
			return bad[0]
		}
		out = res
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("source %s: match Patient: %w", s.id, err)
	}
	return out, nil
}

// Check does GET [base]/metadata and expects an R4 CapabilityStatement.
func (s *FHIR) Check(ctx context.Context) error {
	err := s.call(ctx, "check", "CapabilityStatement", func(ctx context.Context) error {
		body, err := s.get(ctx, s.base.JoinPath("metadata"), "check", "CapabilityStatement")
		if err != nil {
			return err
		}
		return checkCapabilities(body)
	})
	if err != nil {
		return fmt.Errorf("source %s: check: %w", s.id, err)
	}
	return nil
}

// call runs one logical operation (all its retries and pages) under the
// source's deadline and through its breaker.
func (s *FHIR) call(ctx context.Context, op, resourceType string, fn func(context.Context) error) (err error) {
	start := time.Now()
	defer func() { s.metrics.called(ctx, start, err) }()
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	_, err = s.breaker.Execute(func() (struct{}, error) { return struct{}{}, fn(ctx) })
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		s.log.Debug("source call refused by open breaker", "op", op, "type", resourceType)
		return fmt.Errorf("circuit breaker open: %w", ErrUnavailable)
	}
	return err
}

// attemptError is one failed HTTP attempt, already mapped to a sentinel.
type attemptError struct {
	err        error
	retry      bool
	retryAfter time.Duration // what the source asked for; 0 = use backoff
	// throttled: the source asked the gateway to wait (429, 503 with
	// Retry-After); waited for whatever the retry count says.
	throttled bool
}

func (e *attemptError) Error() string { return e.err.Error() }
func (e *attemptError) Unwrap() error { return e.err }

// get fetches u, retrying transient failures with exponential backoff and
// jitter, within ctx's deadline. A throttled answer is waited out (its
// Retry-After, or a backoff when it gives none) apart from the retries, as
// long as the wait fits in the deadline; when it does not, get returns a
// *ThrottledError.
func (s *FHIR) get(ctx context.Context, u *url.URL, op, resourceType string) ([]byte, error) {
	retries, waits := 0, 0
	for attempt := 0; ; attempt++ {
		body, aerr := s.attempt(ctx, u, op, resourceType, attempt)
		if aerr == nil {
			return body, nil
		}
		var delay time.Duration
		switch {
		case aerr.throttled:
			delay = aerr.retryAfter
			if delay <= 0 {
				delay = s.backoffDelay(waits)
			}
			waits++
			if waits > maxThrottleWaits || !fits(ctx, delay) {
				s.log.Info("source throttled past the call's deadline", "op", op, "type", resourceType, "retry_after", delay)
				return nil, &ThrottledError{RetryAfter: delay}
			}
			s.metrics.waited(ctx, delay)
		case aerr.retry && retries < s.retries:
			retries++
			delay = aerr.retryAfter
			if delay <= 0 {
				delay = s.backoffDelay(retries - 1)
			}
			if !fits(ctx, delay) {
				// Waiting would only end in a timeout: report the real cause.
				return nil, aerr.err
			}
		default:
			return nil, aerr.err
		}
		if err := sleep(ctx, delay); err != nil {
			return nil, err
		}
	}
}

// fits tells whether waiting d leaves ctx's deadline in the future.
func fits(ctx context.Context, d time.Duration) bool {
	dl, ok := ctx.Deadline()
	return !ok || time.Until(dl) > d
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctxError(ctx)
	case <-t.C:
		return nil
	}
}

// pace waits for the source's rate limit to let one call go. A wait that
// does not fit in ctx's deadline is not started: the call is throttled.
func (s *FHIR) pace(ctx context.Context) error {
	if s.limiter == nil {
		return nil
	}
	r := s.limiter.Reserve()
	d := r.Delay()
	if d <= 0 {
		return nil
	}
	if !fits(ctx, d) {
		r.Cancel()
		return &ThrottledError{RetryAfter: d}
	}
	s.metrics.waited(ctx, d)
	if err := sleep(ctx, d); err != nil {
		r.Cancel()
		return err
	}
	return nil
}

func (s *FHIR) backoffDelay(attempt int) time.Duration {
	d := s.backoff
	for i := 0; i < attempt && d < s.maxBackoff; i++ {
		d *= 2
	}
	d = min(d, s.maxBackoff)
	half := d / 2
	return half + rand.N(d-half+1)
}

func ctxError(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w (%w)", ErrTimeout, context.DeadlineExceeded)
	}
	return ctx.Err()
}

// attempt is one GET. Its errors never hold the URL: the path holds patient
// ids and the query search values.
func (s *FHIR) attempt(ctx context.Context, u *url.URL, op, resourceType string, n int) ([]byte, *attemptError) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, &attemptError{err: fmt.Errorf("build request: %w", ErrRejected)}
	}
	return s.do(ctx, req, op, resourceType, n)
}

// do sends one request and reads its answer; the errors never hold the
// URL or the body.
func (s *FHIR) do(ctx context.Context, req *http.Request, op, resourceType string, n int) ([]byte, *attemptError) {
	if err := s.pace(ctx); err != nil {
		return nil, &attemptError{err: err}
	}
	start := time.Now()
	req.Header.Set("Accept", fhirJSON)
	if s.authorization != "" {
		req.Header.Set("Authorization", s.authorization)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.log.Debug("source request failed", "op", op, "type", resourceType, "attempt", n+1, "duration", time.Since(start))
		if ctx.Err() != nil {
			return nil, &attemptError{err: ctxError(ctx)}
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, errRedirectRefused) {
			return nil, &attemptError{err: fmt.Errorf("%v: %w", errRedirectRefused, ErrInvalidResponse)}
		}
		return nil, &attemptError{err: fmt.Errorf("%w: %v", ErrUnavailable, err), retry: true}
	}
	defer resp.Body.Close()
	s.log.Debug("source response", "op", op, "type", resourceType, "status", resp.StatusCode, "attempt", n+1, "duration", time.Since(start))

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// Drain a little so the connection can be reused; the body (an
		// OperationOutcome at best) may quote the request and is not kept.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, s.statusError(resp)
	}
	if resp.ContentLength > s.maxBytes {
		return nil, &attemptError{err: fmt.Errorf("response of %d bytes exceeds the %d byte limit: %w", resp.ContentLength, s.maxBytes, ErrInvalidResponse)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.maxBytes+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, &attemptError{err: ctxError(ctx)}
		}
		return nil, &attemptError{err: fmt.Errorf("%w: reading response: %v", ErrUnavailable, err), retry: true}
	}
	if int64(len(body)) > s.maxBytes {
		return nil, &attemptError{err: fmt.Errorf("response exceeds the %d byte limit: %w", s.maxBytes, ErrInvalidResponse)}
	}
	return body, nil
}

func (s *FHIR) statusError(resp *http.Response) *attemptError {
	code := resp.StatusCode
	switch {
	case code == http.StatusNotFound || code == http.StatusGone:
		return &attemptError{err: fmt.Errorf("status %d: %w", code, ErrNotFound)}
	case code == http.StatusTooManyRequests,
		code == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
		// The source asks the gateway to wait: that is throttling, not
		// an outage.
		ra := s.retryAfter(resp)
		return &attemptError{err: fmt.Errorf("status %d: %w", code, &ThrottledError{RetryAfter: ra}), throttled: true, retryAfter: ra}
	case code == http.StatusBadGateway || code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout:
		return &attemptError{err: fmt.Errorf("status %d: %w", code, ErrUnavailable), retry: true, retryAfter: s.retryAfter(resp)}
	case code >= 500:
		return &attemptError{err: fmt.Errorf("status %d: %w", code, ErrUnavailable)}
	case code >= 400:
		return &attemptError{err: fmt.Errorf("status %d: %w", code, ErrRejected)}
	default:
		return &attemptError{err: fmt.Errorf("unexpected status %d: %w", code, ErrInvalidResponse)}
	}
}

// retryAfter reads Retry-After as seconds or an HTTP date; 0 when absent or
// unreadable.
func (s *FHIR) retryAfter(resp *http.Response) time.Duration {
	v := strings.TrimSpace(resp.Header.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(min(secs, 86400)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(s.now()), 0)
	}
	return 0
}
