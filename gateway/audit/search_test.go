package audit

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/gateway/auth"
)

// searchLog writes six records (recorded at testTime + 1..6 minutes) and
// returns the log and the ids in order.
func searchLog(t *testing.T) (*Log, []string) {
	t.Helper()
	l := openLog(t, filepath.Join(t.TempDir(), "audit.jsonl"), Options{})
	nurse := auth.Requester{ClientID: "client-nl-2", Org: "org-umc", Country: "NL", Role: "nurse", PurposeOfUse: "PUBHLTH"}
	emergency := clinician
	emergency.PurposeOfUse, emergency.BreakGlass = "ETREAT", true
	specs := []struct {
		req     auth.Requester
		patient string
		outcome string
	}{
		{clinician, "Patient/gw-a", OutcomeSuccess},
		{nurse, "Patient/gw-a", OutcomeDenied},
		{clinician, "Patient/gw-b", OutcomeSuccess},
		{nurse, "", OutcomeSuccess},
		{emergency, "Patient/gw-b", OutcomeSuccess},
		{clinician, "Patient/gw-a", OutcomeFailed},
	}
	var ids []string
	for _, s := range specs {
		e := entryFor(s.outcome)
		e.Requester, e.Patient, e.BreakGlass = s.req, s.patient, s.req.BreakGlass
		id, err := l.Record(context.Background(), e)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return l, ids
}

func TestSearch(t *testing.T) {
	l, ids := searchLog(t)
	at := func(min int) time.Time { return testTime.Add(time.Duration(min) * time.Minute) }
	// want lists record numbers (1-based), newest first.
	tests := []struct {
		name  string
		q     Query
		want  []int
		total int
	}{
		{"everything", Query{}, []int{6, 5, 4, 3, 2, 1}, 6},
		{"patient reference", Query{Patient: "Patient/gw-a"}, []int{6, 2, 1}, 3},
		{"bare patient id", Query{Patient: "gw-b"}, []int{5, 3}, 2},
		{"unknown patient", Query{Patient: "gw-z"}, nil, 0},
		{"agent by client id", Query{Agent: "client-nl-2"}, []int{4, 2}, 2},
		{"agent by organisation", Query{Agent: "org-charite"}, []int{6, 5, 3, 1}, 4},
		{"purpose", Query{Purpose: "PUBHLTH"}, []int{4, 2}, 2},
		{"break-glass purpose", Query{Purpose: "BTG"}, []int{5}, 1},
		{"outcome code", Query{Outcome: "4"}, []int{2}, 1},
		{"outcome name", Query{Outcome: OutcomeFailed}, []int{6}, 1},
		{"date range", Query{DateFrom: at(2), DateTo: at(5)}, []int{4, 3, 2}, 3},
		{"date from only", Query{DateFrom: at(6)}, []int{6}, 1},
		{"combined", Query{Patient: "gw-a", Agent: "org-charite", Outcome: OutcomeSuccess}, []int{1}, 1},
		{"first page", Query{Count: 2}, []int{6, 5}, 6},
		{"second page", Query{Count: 2, Offset: 2}, []int{4, 3}, 6},
		{"last partial page", Query{Count: 4, Offset: 4}, []int{2, 1}, 6},
		{"offset past the end", Query{Count: 2, Offset: 10}, nil, 6},
		{"filtered page", Query{Patient: "gw-a", Count: 1, Offset: 1}, []int{2}, 3},
		{"requester country", Query{Country: "NL"}, []int{4, 2}, 2},
		{"break-glass", Query{BreakGlass: true}, []int{5}, 1},
		{"break-glass and purpose", Query{BreakGlass: true, Purpose: "TREAT"}, nil, 0},
		{"operation", Query{Operation: "summary"}, []int{6, 5, 4, 3, 2, 1}, 6},
		{"other operation", Query{Operation: "review-break-glass"}, nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, total, err := l.Search(context.Background(), tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if total != tc.total {
				t.Errorf("total = %d, want %d", total, tc.total)
			}
			var gotIDs, wantIDs []string
			for _, ev := range got {
				cr, err := r4.Parse(ev)
				if err != nil {
					t.Fatalf("search result is not valid R4: %v", err)
				}
				gotIDs = append(gotIDs, r4.ID(cr))
			}
			for _, n := range tc.want {
				wantIDs = append(wantIDs, ids[n-1])
			}
			if !slices.Equal(gotIDs, wantIDs) {
				t.Errorf("ids = %v, want records %v (%v)", gotIDs, tc.want, wantIDs)
			}
		})
	}
}

func TestSearchRejectsNegativePaging(t *testing.T) {
	l, _ := searchLog(t)
	for _, q := range []Query{{Count: -1}, {Offset: -1}} {
		if _, _, err := l.Search(context.Background(), q); err == nil {
			t.Errorf("Search(%+v) accepted negative paging", q)
		}
	}
}

func TestSearchIndexSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l := openLog(t, path, Options{})
	e := entryFor(OutcomeSuccess)
	e.Patient = "Patient/gw-restart"
	id, err := l.Record(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	recordN(t, l, 2)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := openLog(t, path, Options{})
	got, total, err := l2.Search(context.Background(), Query{Patient: "gw-restart"})
	if err != nil || total != 1 || len(got) != 1 {
		t.Fatalf("Search = %d of %d, %v; want 1", len(got), total, err)
	}
	var ev struct{ ID string }
	if err := json.Unmarshal(got[0], &ev); err != nil || ev.ID != id {
		t.Errorf("found %q, want %q", ev.ID, id)
	}
}

func TestSearchHonoursContext(t *testing.T) {
	l, _ := searchLog(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := l.Search(ctx, Query{}); err == nil {
		t.Error("Search ignored a cancelled context")
	}
}
