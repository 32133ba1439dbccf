package source

import (
	"errors"
	"fmt"
	"time"
)

// Resource is one resource as a national source returned it.
type Resource struct {
	// Type is the FHIR resource type.
	Type string
	// ID is the source's logical id of the resource.
	ID string
	// JSON is the resource in R4 JSON, already validated by the R4 codec,
	// with urn:uuid references rewritten to Type/id. Sources may share the
	// bytes between calls: callers must not modify them.
	JSON []byte
}

// Errors callers branch on. Errors returned by sources wrap one of them.
var (
	// ErrNotFound: the source says the resource does not exist (404/410).
	ErrNotFound = errors.New("not found at source")
	// ErrUnavailable: the source could not be reached, answered 5xx, or its
	// circuit breaker is open.
	ErrUnavailable = errors.New("source unavailable")
	// ErrTimeout: the source did not answer within its deadline.
	ErrTimeout = errors.New("source timed out")
	// ErrInvalidResponse: the source answered with something that is not
	// valid FHIR R4 (or too large); it is reported, never passed on.
	ErrInvalidResponse = errors.New("invalid response from source")
	// ErrRejected: the source refused the gateway's request (4xx other than
	// 404/410); the client is not at fault.
	ErrRejected = errors.New("source rejected the request")
	// ErrTruncated: a search had more pages than the source's page bound
	// allows. Search returns the results it gathered together with an error
	// wrapping ErrTruncated, so a caller can serve them with a warning
	// rather than pass an incomplete record off as complete.
	ErrTruncated = errors.New("search results truncated at the page bound")
	// ErrThrottled: the source asked the gateway to wait (429, or 503 with
	// Retry-After), or the source's rate limit held the call back, for
	// longer than the call's deadline leaves. It is not a failure of the
	// source and never counts towards its circuit breaker; errors.As gives
	// a *ThrottledError saying how long the source asked for.
	ErrThrottled = errors.New("source throttled the gateway")
)

// ErrDropped: a search answer held resources that are not valid R4. Search
// returns the valid ones together with a *DroppedError wrapping it, so that
// a caller serves them with a warning; one bad resource never sinks a page.
var ErrDropped = errors.New("resources that are not valid R4 were left out")

// DroppedError says how many resources of a search answer were left out
// and why (one *InvalidResourceError each, log-safe). It wraps ErrDropped.
type DroppedError struct {
	// Invalid are the resources left out, in the order they came.
	Invalid []error
}

func (e *DroppedError) Error() string {
	msg := fmt.Sprintf("%d resource(s) that are not valid R4 were left out", len(e.Invalid))
	if len(e.Invalid) > 0 {
		msg += " (first: " + e.Invalid[0].Error() + ")"
	}
	return msg
}

// Is makes errors.Is(err, ErrDropped) true.
func (e *DroppedError) Is(target error) bool { return target == ErrDropped }

// ThrottledError says how long a throttled source asked the gateway to
// wait. It wraps ErrThrottled.
type ThrottledError struct {
	// RetryAfter is how long the source (or its rate limit) asked to wait
	// from when the error was made; zero when it did not say.
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	if e.RetryAfter <= 0 {
		return ErrThrottled.Error()
	}
	return fmt.Sprintf("%v (retry after %s)", ErrThrottled, e.RetryAfter.Round(time.Second))
}

// Is makes errors.Is(err, ErrThrottled) true.
func (e *ThrottledError) Is(target error) bool { return target == ErrThrottled }
