package federate

import (
	"context"
	"errors"
	"time"

	"github.com/migrant-health/mhg/gateway/source"
	"github.com/migrant-health/mhg/gateway/telemetry"
)

// WarnThrottled is the warning code of a source that asked the gateway to
// wait (429, or 503 with Retry-After) longer than the request's deadline
// leaves, or whose configured rate limit held the call back as long.
const WarnThrottled = "throttled"

// WarnIncomplete is the warning code of a source that returned resources
// that are not valid R4: they were left out, the rest was kept
// (source.ErrDropped).
const WarnIncomplete = "incomplete"

// failures counts the sources that could not answer one request, so that
// the request's error says whether they all timed out or all asked the
// gateway to wait (and for how long).
type failures struct {
	n, timeouts, throttled int
	retryAfter             time.Duration
}

// add counts one source's error.
func (f *failures) add(err error) {
	f.n++
	switch errorClass(err) {
	case "timeout":
		f.timeouts++
	case WarnThrottled:
		f.throttled++
		var te *source.ThrottledError
		if errors.As(err, &te) && te.RetryAfter > 0 && (f.retryAfter == 0 || te.RetryAfter < f.retryAfter) {
			f.retryAfter = te.RetryAfter
		}
	}
}

// sourceFailed counts a source's error in fails and logs it (the source
// id and the error class, nothing of the request); it returns the class,
// the code of the warning the answer carries for that source.
func (s *Service) sourceFailed(ctx context.Context, fails *failures, id string, err error) string {
	fails.add(err)
	class := errorClass(err)
	s.log.WarnContext(ctx, "source failed", string(telemetry.AttrSourceID), id, "error_class", class)
	return class
}

// err is the error of a request none of whose sources answered.
func (f *failures) err() *SourcesFailedError {
	e := &SourcesFailedError{Timeout: f.n > 0 && f.timeouts == f.n}
	if f.n > 0 && f.throttled == f.n {
		e.Throttled, e.RetryAfter = true, f.retryAfter
	}
	return e
}
