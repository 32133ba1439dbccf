package audit

import (
	"bytes"
	"context"
	"encoding/csv"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/migrant-health/mhg/conformance/r4"
)

func TestParseEventReadsBackTheEntry(t *testing.T) {
	e := entryFor(OutcomeSuccess)
	e.BreakGlass = true
	e.Requester.PurposeOfUse = "ETREAT"
	e.Decisions[1].Agreements = []string{"de-nl-ua-2025"}
	e.Decisions[1].Class = "C"
	b, err := Render(e, "ev-1", testTime.Add(time.Second), Observer{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseEvent(b)
	if err != nil {
		t.Fatal(err)
	}
	want := Event{
		ID: "ev-1", Recorded: testTime.Add(time.Second).Truncate(time.Microsecond), Start: testTime.Truncate(time.Microsecond),
		Interaction: "operation", ResourceType: "Patient", Operation: "summary", Outcome: OutcomeSuccess, Status: 200,
		ClientID: "client-de-1", Org: "org-charite", Country: "DE", Role: "clinician", Purpose: "ETREAT", BreakGlass: true,
		Patient: "gw-7f3a9c", Sources: []string{"de-sample", "ua-sample"}, Released: map[string]int{"Patient": 1, "Condition": 3},
		Decisions: []Decision{
			{ID: "dec-1", Phase: "query", Source: "de-sample", Allow: true, Reasons: []string{"agreement.de-ua.permit"}, Revision: "rev-42", Agreements: []string{}},
			{ID: "dec-2", Phase: "release", Source: "ua-sample", Allow: true, Reasons: []string{"consent.permit", "scope.ok"}, Revision: "rev-42", Agreements: []string{"de-nl-ua-2025"}, Class: "C"},
		},
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseEvent (-want +got):\n%s", diff)
	}
	if !slices.Equal(got.ReleasedTypes(), []string{"Condition", "Patient"}) || !slices.Equal(got.DataClasses(), []string{"C"}) ||
		!slices.Equal(got.Agreements(), []string{"de-nl-ua-2025"}) || !slices.Equal(got.Rules(), []string{"agreement.de-ua.permit", "consent.permit", "scope.ok"}) {
		t.Errorf("derived: %v %v %v %v", got.ReleasedTypes(), got.DataClasses(), got.Agreements(), got.Rules())
	}
	if _, err := ParseEvent([]byte(`{"resourceType":"Patient"}`)); err == nil {
		t.Error("a Patient parsed as an AuditEvent")
	}
}

func TestReviewRecords(t *testing.T) {
	l := openLog(t, filepath.Join(t.TempDir(), "audit.jsonl"), Options{})
	e := entryFor(OutcomeSuccess)
	e.Interaction, e.ResourceType, e.Operation, e.Patient = "operation", "AuditEvent", "review-break-glass", ""
	e.Review = &Review{EventID: "0b6c1a4e-6a36-4c53-9d0f-1f2a3b4c5d6e", Note: "emergency confirmed by the ward"}
	id, err := l.Record(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	raws, _, err := l.Search(context.Background(), Query{Operation: "review-break-glass"})
	if err != nil || len(raws) != 1 {
		t.Fatalf("%d reviews, %v", len(raws), err)
	}
	if _, err := r4.Parse(raws[0]); err != nil {
		t.Fatalf("a review record is not valid R4: %v", err)
	}
	ev, _ := ParseEvent(raws[0])
	if ev.ID != id || ev.Review == nil || *ev.Review != *e.Review {
		t.Errorf("review read back as %+v", ev.Review)
	}
	e.Review.EventID = "not an id!"
	if _, err := l.Record(context.Background(), e); err == nil {
		t.Error("a review of a malformed id was recorded")
	}
}

func TestDisclosures(t *testing.T) {
	l, ids := searchLog(t)
	events, raws, err := Disclosures(context.Background(), l, DisclosureQuery{Patients: []string{"Patient/gw-b", "gw-a"}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, ev := range events {
		got = append(got, ev.ID)
		if cr, err := r4.Parse(raws[i]); err != nil || r4.ID(cr) != ev.ID {
			t.Errorf("raw %d is not the event %s: %v", i, ev.ID, err)
		}
	}
	// Record 4 names no patient; the rest are in the order recorded.
	want := []string{ids[0], ids[1], ids[2], ids[4], ids[5]}
	if !slices.Equal(got, want) {
		t.Errorf("disclosures %v, want %v", got, want)
	}
	from := testTime.Add(3 * time.Minute)
	events, _, _ = Disclosures(context.Background(), l, DisclosureQuery{Patients: []string{"gw-a"}, From: from})
	if len(events) != 1 || events[0].ID != ids[5] {
		t.Errorf("from %s: %d events", from, len(events))
	}

	var buf bytes.Buffer
	all, _, _ := Disclosures(context.Background(), l, DisclosureQuery{Patients: []string{"gw-b"}})
	if err := WriteDisclosuresCSV(&buf, all); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rows[0], DisclosureColumns) || len(rows) != 3 {
		t.Fatalf("CSV: %v", rows)
	}
	col := func(name string) int { return slices.Index(DisclosureColumns, name) }
	last := rows[2]
	if last[col("audit_event")] != ids[4] || last[col("break_glass")] != "true" || last[col("recipient_organisation")] != "org-charite" ||
		last[col("recipient_country")] != "DE" || last[col("purpose")] != "ETREAT" || last[col("outcome")] != "success" ||
		!strings.Contains(last[col("resource_types")], "Condition") {
		t.Errorf("row %v", last)
	}
}

func TestVerifyChainOfAnOpenLog(t *testing.T) {
	l, ids := searchLog(t)
	rep, err := l.VerifyChain(context.Background())
	if err != nil || !rep.OK() || rep.Records != len(ids) {
		t.Fatalf("%+v, %v", rep, err)
	}
	seq, hash := l.Head()
	if rep.LastSeq != seq || rep.LastHash != hash {
		t.Errorf("verified head %d %s, log head %d %s", rep.LastSeq, rep.LastHash, seq, hash)
	}
}
