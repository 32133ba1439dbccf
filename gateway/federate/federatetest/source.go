// Package federatetest holds test doubles for code built on federate: an
// in-memory national source that records every call, a bundle source
// serving a generated population, and a policy decider built from a
// function.
package federatetest

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/gateway/authz"
	"github.com/migrant-health/mhg/gateway/source"
)

// Source is a national source held in memory. It answers identifier and
// patient searches by plain text matching, which is enough for tests, and
// records every call.
type Source struct {
	// SourceID, SourceCountry and SourceProfile answer ID, Country and
	// Profile; SourceProfile "" means "ips".
	SourceID, SourceCountry, SourceProfile string
	// Resources are what the source holds.
	Resources []source.Resource
	// Fail, when set, is returned by every Read and Search.
	Fail error
	// Delay makes every call wait (honouring the context).
	Delay time.Duration

	mu    sync.Mutex
	calls []string
}

// ID returns SourceID.
func (m *Source) ID() string { return m.SourceID }

// Country returns SourceCountry.
func (m *Source) Country() string { return m.SourceCountry }

// Profile returns SourceProfile, default "ips".
func (m *Source) Profile() string {
	if m.SourceProfile == "" {
		return "ips"
	}
	return m.SourceProfile
}

// Check always succeeds.
func (m *Source) Check(context.Context) error { return nil }

// Calls returns how many Read and Search calls were made.
func (m *Source) Calls() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.calls)
}

func (m *Source) begin(ctx context.Context, call string) error {
	m.mu.Lock()
	m.calls = append(m.calls, call)
	m.mu.Unlock()
	if m.Delay > 0 {
		select {
		case <-time.After(m.Delay):
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", source.ErrTimeout, ctx.Err())
		}
	}
	return m.Fail
}

// Read returns the resource of that type and id, or source.ErrNotFound.
func (m *Source) Read(ctx context.Context, typ, id string) (source.Resource, error) {
	if err := m.begin(ctx, "read "+typ); err != nil {
		return source.Resource{}, err
	}
	for _, r := range m.Resources {
		if r.Type == typ && r.ID == id {
			return r, nil
		}
	}
	return source.Resource{}, source.ErrNotFound
}

// Search answers identifier (on the value) and patient searches.
func (m *Source) Search(ctx context.Context, typ string, q url.Values) ([]source.Resource, error) {
	if err := m.begin(ctx, "search "+typ); err != nil {
		return nil, err
	}
	var out []source.Resource
	for _, r := range m.Resources {
		if r.Type != typ {
			continue
		}
		js := string(r.JSON)
		switch {
		case q.Get("identifier") != "":
			v := q.Get("identifier")
			if _, after, ok := strings.Cut(v, "|"); ok {
				v = after
			}
			if strings.Contains(js, `"value":"`+v+`"`) {
				out = append(out, r)
			}
		case q.Get("patient") != "":
			if strings.Contains(js, `"reference":"Patient/`+q.Get("patient")+`"`) {
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// Resource parses js (which must be valid R4) into a source.Resource.
func Resource(t testing.TB, js string) source.Resource {
	t.Helper()
	cr, err := r4.Parse([]byte(js))
	if err != nil {
		t.Fatalf("fixture is not valid R4: %v", err)
	}
	return source.Resource{Type: r4.TypeName(cr), ID: r4.ID(cr), JSON: []byte(js)}
}

// Decider adapts a function to a policy decider and records its inputs.
type Decider struct {
	// Fn decides.
	Fn func(authz.Input) (authz.Decision, error)

	mu     sync.Mutex
	inputs []authz.Input
}

// Decide records in and calls Fn.
func (d *Decider) Decide(_ context.Context, in authz.Input) (authz.Decision, error) {
	d.mu.Lock()
	d.inputs = append(d.inputs, in)
	d.mu.Unlock()
	return d.Fn(in)
}

// Inputs returns every input decided so far.
func (d *Decider) Inputs() []authz.Input {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]authz.Input(nil), d.inputs...)
}

// AllowCountry allows everything about sources of one country and refuses
// the rest, with stable test rule ids.
func AllowCountry(country string) *Decider {
	return &Decider{Fn: func(in authz.Input) (authz.Decision, error) {
		if in.Source != nil && in.Source.Country == country {
			return authz.Decision{Allow: true, Reasons: []string{"test.allow"}, Revision: "r1", ID: "d"}, nil
		}
		return authz.Decision{Reasons: []string{"test.other-country"}, Revision: "r1", ID: "d"}, nil
	}}
}
