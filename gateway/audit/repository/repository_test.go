package repository_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/migrant-health/mhg/gateway/audit"
	"github.com/migrant-health/mhg/gateway/audit/chain"
	"github.com/migrant-health/mhg/gateway/audit/repository"
	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/internal/pgtest"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// open migrates a new database and opens the repository on it.
func open(t *testing.T) (*repository.Repository, string) {
	t.Helper()
	url := pgtest.NewDatabase(t, "")
	r, err := repository.Open(context.Background(), repository.Options{URL: url, Migrate: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r, url
}

// writeLog writes n records to a local log (one a minute from t0, the
// requesters, patients and outcomes varying) and returns the log and its
// chain records.
func writeLog(t testing.TB, n int) (*audit.Log, []chain.Record) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	var (
		mu  sync.Mutex
		now = t0
	)
	l, err := audit.New(audit.Options{Path: path, Observer: audit.Observer{Instance: "gw-test"}, Now: func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(time.Minute)
		return now
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	for i := range n {
		req := auth.Requester{ClientID: fmt.Sprintf("client-%d", i%3), Org: []string{"org-charite", "org-umc"}[i%2],
			Country: []string{"DE", "NL"}[i%2], Role: "clinician", PurposeOfUse: []string{"TREAT", "PUBHLTH", "ETREAT"}[i%3]}
		e := audit.Entry{Time: t0, TraceID: fmt.Sprintf("%032x", i+1), SpanID: "00f067aa0ba902b7", Requester: req,
			Interaction: "operation", ResourceType: "Patient", Operation: "summary",
			Patient: fmt.Sprintf("Patient/gw-%d", i%4), Sources: []string{"nl-ehr"},
			Outcome: []string{audit.OutcomeSuccess, audit.OutcomeDenied, audit.OutcomeSuccess, audit.OutcomeFailed}[i%4],
			Status:  200, BreakGlass: req.PurposeOfUse == "ETREAT"}
		if _, err := l.Record(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []chain.Record
	if _, err := chain.Scan(f, func(rec chain.Record, _ int64, _ int) { recs = append(recs, rec) }); err != nil {
		t.Fatal(err)
	}
	return l, recs
}

func shipped(instance string, recs []chain.Record) []repository.Record {
	out := make([]repository.Record, len(recs))
	for i, r := range recs {
		out[i] = repository.Record{Instance: instance, Record: r}
	}
	return out
}

func TestMigrateConcurrently(t *testing.T) {
	url := pgtest.NewDatabase(t, "")
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() {
			r, err := repository.Open(context.Background(), repository.Options{URL: url, Migrate: true, Logger: quiet})
			if err == nil {
				r.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}
}

func TestInsertIdempotent(t *testing.T) {
	r, _ := open(t)
	ctx := context.Background()
	_, recs := writeLog(t, 5)
	batch := shipped("gw-a", recs)

	if n, err := r.Insert(ctx, batch[:3]); err != nil || n != 3 {
		t.Fatalf("first insert: %d new, %v; want 3", n, err)
	}
	// A shipper that crashed before its checkpoint sends the batch again,
	// with what followed.
	if n, err := r.Insert(ctx, batch); err != nil || n != 2 {
		t.Fatalf("second insert: %d new, %v; want 2", n, err)
	}
	if seq, hash, err := r.Head(ctx, "gw-a"); err != nil || seq != 5 || hash != recs[4].Hash {
		t.Fatalf("head = %d %s, %v; want 5 %s", seq, hash, err, recs[4].Hash)
	}
	total := 0
	err := r.Records(ctx, "gw-a", 1, func(rec chain.Record) error {
		total++
		if !slices.Equal(rec.Event, recs[rec.Seq-1].Event) || rec.Hash != recs[rec.Seq-1].Hash {
			return fmt.Errorf("record %d differs from what was shipped", rec.Seq)
		}
		return nil
	})
	if err != nil || total != 5 {
		t.Fatalf("records: %d, %v", total, err)
	}

	// The same seq with another record is refused, not silently dropped.
	forged := batch[4]
	forged.Hash = recs[3].Hash
	if _, err := r.Insert(ctx, []repository.Record{forged}); !errors.Is(err, repository.ErrConflict) {
		t.Fatalf("conflicting record: %v, want ErrConflict", err)
	}
	// Another instance reusing an AuditEvent id is refused too.
	other := batch[0]
	other.Instance = "gw-b"
	if _, err := r.Insert(ctx, []repository.Record{other}); !errors.Is(err, repository.ErrConflict) {
		t.Fatalf("reused id: %v, want ErrConflict", err)
	}
}

func TestAppendOnly(t *testing.T) {
	r, url := open(t)
	ctx := context.Background()
	_, recs := writeLog(t, 2)
	if _, err := r.Insert(ctx, shipped("gw-a", recs)); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// The trigger refuses changes even to the superuser tests connect as.
	for _, stmt := range []string{
		"UPDATE audit_records SET outcome = '0'",
		"DELETE FROM audit_records WHERE seq = 2",
		"TRUNCATE audit_records",
	} {
		if _, err := conn.Exec(ctx, stmt); err == nil {
			t.Errorf("%s: accepted", stmt)
		}
	}
	// The gateway's role has no UPDATE or DELETE grant in the first place.
	for priv, want := range map[string]bool{"SELECT": true, "INSERT": true, "UPDATE": false, "DELETE": false, "TRUNCATE": false} {
		var has bool
		if err := conn.QueryRow(ctx, "SELECT has_table_privilege('mhg_gateway', 'audit_records', $1)", priv).Scan(&has); err != nil {
			t.Fatal(err)
		}
		if has != want {
			t.Errorf("mhg_gateway %s on audit_records = %v, want %v", priv, has, want)
		}
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM audit_records").Scan(&n); err != nil || n != 2 {
		t.Fatalf("records after refused changes: %d, %v", n, err)
	}
}

// TestSearchAsLog runs the auditor's queries against the local log's index
// and the repository holding the same records: both must answer alike.
func TestSearchAsLog(t *testing.T) {
	r, _ := open(t)
	ctx := context.Background()
	l, recs := writeLog(t, 24)
	if _, err := r.Insert(ctx, shipped("gw-test", recs)); err != nil {
		t.Fatal(err)
	}
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	tests := []struct {
		name string
		q    audit.Query
	}{
		{"everything", audit.Query{}},
		{"patient reference", audit.Query{Patient: "Patient/gw-1"}},
		{"bare patient", audit.Query{Patient: "gw-2"}},
		{"unknown patient", audit.Query{Patient: "gw-9"}},
		{"agent client", audit.Query{Agent: "client-1"}},
		{"agent organisation", audit.Query{Agent: "org-umc"}},
		{"purpose", audit.Query{Purpose: "PUBHLTH"}},
		{"break-glass purpose", audit.Query{Purpose: "BTG"}},
		{"break-glass", audit.Query{BreakGlass: true}},
		{"outcome code", audit.Query{Outcome: "4"}},
		{"outcome name", audit.Query{Outcome: audit.OutcomeFailed}},
		{"country", audit.Query{Country: "NL"}},
		{"operation", audit.Query{Operation: "summary"}},
		{"other operation", audit.Query{Operation: "review-break-glass"}},
		{"date range", audit.Query{DateFrom: at(5), DateTo: at(12)}},
		{"date from", audit.Query{DateFrom: at(20)}},
		{"combined", audit.Query{Patient: "gw-0", Agent: "org-charite", Outcome: audit.OutcomeSuccess}},
		{"first page", audit.Query{Count: 5}},
		{"middle page", audit.Query{Count: 5, Offset: 10}},
		{"last page", audit.Query{Count: 5, Offset: 20}},
		{"past the end", audit.Query{Count: 5, Offset: 30}},
		{"filtered page", audit.Query{Agent: "org-umc", Count: 3, Offset: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, wantTotal, err := l.Search(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			got, total, err := r.Search(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if total != wantTotal || !slices.EqualFunc(got, want, func(a, b json.RawMessage) bool { return string(a) == string(b) }) {
				t.Errorf("repository: %d of %d (ids %v); log: %d of %d (ids %v)", len(got), total, ids(got), len(want), wantTotal, ids(want))
			}
		})
	}
	if _, _, err := r.Search(ctx, audit.Query{Count: -1}); err == nil {
		t.Error("negative count accepted")
	}
}

func ids(evs []json.RawMessage) []string {
	var out []string
	for _, e := range evs {
		k, _ := audit.KeysOf(e)
		out = append(out, k.ID)
	}
	return out
}

func TestOpenBadURL(t *testing.T) {
	_, err := repository.Open(context.Background(), repository.Options{URL: "postgres://u:s3cret@[::1"})
	if err == nil {
		t.Fatal("bad URL accepted")
	}
	if got := err.Error(); strings.Contains(got, "s3cret") {
		t.Errorf("error quotes the password: %s", got)
	}
}
