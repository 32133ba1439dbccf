package source

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
)

// Scan hands over what Search returns, in the same order, a page at a
// time: the first page's resources reach the callback before the second
// page is asked for, every page without a _count asks for ScanPageSize,
// and there is no page bound.
func TestFHIRScanStreamsPages(t *testing.T) {
	pid := fixturePatientID(t, maggioFile)
	ctx := context.Background()
	params := url.Values{"patient": {pid}, "_count": {"5"}}
	f := newFakeFHIR(t, 5)
	s := newTestFHIR(t, Options{BaseURL: f.base(), MaxPages: 1000})
	want, err := s.Search(ctx, "Observation", params)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) <= 15 {
		t.Fatalf("%d observations: too few pages to show anything", len(want))
	}
	// A source bounded to two pages still scans them all.
	s = newTestFHIR(t, Options{BaseURL: f.base(), MaxPages: 2})
	before := f.calls()
	var got []Resource
	callsAtFirst := -1
	err = s.Scan(ctx, "Observation", params, func(r Resource) error {
		if callsAtFirst < 0 {
			callsAtFirst = f.calls() - before
		}
		got = append(got, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(got), ids(want)) {
		t.Errorf("scan gave %d resources, search %d, or another order", len(got), len(want))
	}
	if callsAtFirst != 1 {
		t.Errorf("the first resource came after %d requests, want 1 (the first page alone)", callsAtFirst)
	}
	if pages := f.calls() - before; pages != (len(want)+4)/5 {
		t.Errorf("%d requests for %d resources in pages of 5", pages, len(want))
	}

	if err := s.Scan(ctx, "Observation", url.Values{"patient": {pid}}, func(Resource) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if q := f.lastRequest().URL.Query(); q.Get("_count") != "200" {
		t.Errorf("_count %q, want the default 200", q.Get("_count"))
	}

	stop := errors.New("enough")
	before = f.calls()
	n := 0
	if err := s.Scan(ctx, "Observation", params, func(Resource) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("callback error: %v after %d", err, n)
	}
	if f.calls()-before != 1 {
		t.Errorf("%d pages asked for after the callback stopped the scan on the first", f.calls()-before)
	}
}

// A scan never ends silently partial: a next link it cannot follow fails
// it, after the pages read were handed over.
func TestFHIRScanFailsOnABadNextLink(t *testing.T) {
	pid := fixturePatientID(t, maggioFile)
	otherURL, otherCalls := otherHost(t)
	f := newFakeFHIR(t, 5)
	f.nextOverride = otherURL + "/elsewhere/Observation?_page=1"
	s := newTestFHIR(t, Options{BaseURL: f.base()})
	n := 0
	err := s.Scan(context.Background(), "Observation", url.Values{"patient": {pid}}, func(Resource) error { n++; return nil })
	if !errors.Is(err, ErrNextLink) || n != 5 || otherCalls.Load() != 0 {
		t.Errorf("err %v after %d resources, %d calls elsewhere; want ErrNextLink after the first page's 5", err, n, otherCalls.Load())
	}
	if err := s.Scan(context.Background(), "bad type", nil, func(Resource) error { return nil }); !errors.Is(err, ErrRejected) {
		t.Errorf("invalid type: %v", err)
	}
}

// SearchParams reads the CapabilityStatement once and answers per type;
// a source without one has none, so nothing is pushed down to it.
func TestFHIRSearchParams(t *testing.T) {
	f := newFakeFHIR(t, 5)
	s := newTestFHIR(t, Options{BaseURL: f.base()})
	ctx := context.Background()
	if got := s.SearchParams(ctx, "Patient"); !slices.Equal(got, []string{"general-practitioner", "identifier"}) {
		t.Errorf("Patient: %v", got)
	}
	calls := f.calls()
	if got := s.SearchParams(ctx, "Condition"); got != nil {
		t.Errorf("Condition: %v, the statement declares none", got)
	}
	if f.calls() != calls {
		t.Error("the CapabilityStatement was read again")
	}
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotFound) }))
	t.Cleanup(down.Close)
	s = newTestFHIR(t, Options{BaseURL: down.URL})
	if got := s.SearchParams(ctx, "Patient"); got != nil {
		t.Errorf("no CapabilityStatement: %v", got)
	}
}
