package fhirapi

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/migrant-health/mhg/gateway/federate"
)

// What the national sources did decides the status: every source
// throttled is 503 with Retry-After (whole seconds, at least 1), an
// identifier naming unrelated persons is 409, never 404.
func TestUpstreamErrorStatus(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		status     int
		code       string
		retryAfter string
	}{
		{"all throttled", &federate.SourcesFailedError{Throttled: true, RetryAfter: 1500 * time.Millisecond}, http.StatusServiceUnavailable, "throttled", "2"},
		{"throttled without a wait", &federate.SourcesFailedError{Throttled: true}, http.StatusServiceUnavailable, "throttled", "1"},
		{"failed", &federate.SourcesFailedError{}, http.StatusBadGateway, "transient", ""},
		{"ambiguous", fmt.Errorf("summary: %w", federate.ErrAmbiguous), http.StatusConflict, "multiple-matches", ""},
		{"not found", federate.ErrNotFound, http.StatusNotFound, "not-found", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := asError(tt.err)
			if e.Status != tt.status || e.Code != tt.code {
				t.Errorf("got %d %s, want %d %s", e.Status, e.Code, tt.status, tt.code)
			}
			if got := retryAfter(tt.err); got != tt.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, tt.retryAfter)
			}
		})
	}
}
