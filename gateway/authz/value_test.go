package authz

import (
	"testing"
	"time"
)

// The period bounds the policies compare with the evaluation time: a
// partial start begins at its first instant, a partial end includes its
// whole year, month or day, and a bound that cannot be read gives none.
func TestProvisionPeriodBounds(t *testing.T) {
	utc := func(s string) int64 {
		t.Helper()
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm.UnixNano()
	}
	tests := []struct {
		bound      string
		start, end int64 // 0: none
	}{
		{bound: "2030", start: utc("2030-01-01T00:00:00Z"), end: utc("2031-01-01T00:00:00Z")},
		{bound: "2030-02", start: utc("2030-02-01T00:00:00Z"), end: utc("2030-03-01T00:00:00Z")},
		{bound: "2024-02-29", start: utc("2024-02-29T00:00:00Z"), end: utc("2024-03-01T00:00:00Z")},
		{bound: "2025-12-31", start: utc("2025-12-31T00:00:00Z"), end: utc("2026-01-01T00:00:00Z")},
		{bound: "2030-02-01T10:00:00+01:00", start: utc("2030-02-01T09:00:00Z"), end: utc("2030-02-01T09:00:00Z")},
		{bound: "2025-05-31T23:59:59.5Z", start: utc("2025-05-31T23:59:59.5Z"), end: utc("2025-05-31T23:59:59.5Z")},
		{bound: ""},
		{bound: "not a date"},
		{bound: "31/12/2024"},
		{bound: "2025-13"},
		{bound: "2025-02-30"},
		{bound: "20250"},
		{bound: "2025-06-01T00:00:00"}, // no zone
		{bound: "1500"},                // before what nanoseconds since 1970 hold
		{bound: "2262", start: utc("2262-01-01T00:00:00Z")}, // its end is past what they hold
		{bound: "2026-06-01T00:00:00+25:00"},
	}
	for _, tc := range tests {
		t.Run(tc.bound, func(t *testing.T) {
			in := Input{Consent: []Provision{{Type: "deny", Start: tc.bound, End: tc.bound}}}.normalized()
			p := in.Consent[0]
			check := func(name string, got *int64, want int64) {
				t.Helper()
				switch {
				case want == 0 && got != nil:
					t.Errorf("%s = %d, want none", name, *got)
				case want != 0 && got == nil:
					t.Errorf("%s: none, want %d", name, want)
				case want != 0 && *got != want:
					t.Errorf("%s = %s, want %s", name, time.Unix(0, *got).UTC(), time.Unix(0, want).UTC())
				}
			}
			check("start_ns", p.StartNS, tc.start)
			check("end_ns", p.EndNS, tc.end)
		})
	}
}

// Bounds a caller set are replaced by what the engine reads.
func TestProvisionPeriodBoundsReplaced(t *testing.T) {
	forged := int64(1)
	in := Input{Consent: []Provision{{Type: "deny", Start: "soon", StartNS: &forged, EndNS: &forged}}}.normalized()
	if p := in.Consent[0]; p.StartNS != nil || p.EndNS != nil {
		t.Errorf("bounds kept: %+v", p)
	}
}
