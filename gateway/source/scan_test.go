package source

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"testing"
)

// Scan hands over exactly what Search returns, in the same order, stops at
// the first error of its callback, and honours a cancelled context.
func TestBundleScanIsSearch(t *testing.T) {
	b := sharedSynthea(t)
	pid := fixturePatientID(t, maggioFile)
	ctx := context.Background()
	for _, tc := range []struct {
		typ    string
		params url.Values
	}{
		{"Patient", url.Values{}},
		{"Condition", url.Values{"patient": {pid}}},
		{"Observation", url.Values{"patient": {pid + ",nobody"}}},
		{"Patient", url.Values{"family": {"Maggio"}}},
		{"Encounter", url.Values{}},
	} {
		want, werr := b.Search(ctx, tc.typ, tc.params)
		var got []Resource
		gerr := b.Scan(ctx, tc.typ, tc.params, func(r Resource) error { got = append(got, r); return nil })
		if (werr == nil) != (gerr == nil) || !slices.Equal(ids(got), ids(want)) {
			t.Errorf("%s %v: scan %d (%v), search %d (%v)", tc.typ, tc.params, len(got), gerr, len(want), werr)
		}
	}
	stop := errors.New("enough")
	n := 0
	if err := b.Scan(ctx, "Patient", url.Values{}, func(Resource) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("callback error: %v after %d", err, n)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.Scan(cancelled, "Patient", url.Values{}, func(Resource) error { return nil }); !errors.Is(err, ErrTimeout) && !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if err := b.Scan(ctx, "Condition", url.Values{"_has:x": {"y"}}, func(Resource) error { return nil }); err == nil {
		if _, serr := b.Search(ctx, "Condition", url.Values{"_has:x": {"y"}}); serr != nil {
			t.Error("Search refuses what Scan accepts")
		}
	}
}
