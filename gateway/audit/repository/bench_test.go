package repository_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/migrant-health/mhg/gateway/audit"
	"github.com/migrant-health/mhg/gateway/audit/chain"
	"github.com/migrant-health/mhg/gateway/audit/repository"
	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/internal/pgtest"
)

// BenchmarkAuditThroughput compares, in one run, how many audit records a
// second the local fsynced log takes (concurrent callers share writes and
// fsyncs, as the gateway's requests do) with how many the PostgreSQL
// repository takes from a shipper (batches of 500, one INSERT ... SELECT
// FROM unnest each), on the same machine.
func BenchmarkAuditThroughput(b *testing.B) {
	entry := audit.Entry{Time: t0, TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7",
		Requester:   auth.Requester{ClientID: "client-de-1", Org: "org-charite", Country: "DE", Role: "clinician", PurposeOfUse: "TREAT"},
		Interaction: "operation", ResourceType: "Patient", Operation: "summary", Patient: "Patient/gw-1",
		Sources: []string{"de-kbv", "ua-ehealth"}, Released: map[string]int{"Condition": 3}, Outcome: audit.OutcomeSuccess, Status: 200}
	b.Run("local-log", func(b *testing.B) {
		l, err := audit.New(audit.Options{Path: filepath.Join(b.TempDir(), "audit.jsonl"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		b.SetParallelism(8)
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := l.Record(context.Background(), entry); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
	})
	b.Run("postgres-batch-500", func(b *testing.B) {
		url := pgtest.NewDatabase(b, "")
		r, err := repository.Open(context.Background(), repository.Options{URL: url, Migrate: true, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		recs := sealed(b, b.N, entry)
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < len(recs); i += 500 {
			if _, err := r.Insert(context.Background(), recs[i:min(i+500, len(recs))]); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
	})
}

// sealed renders n chained records of instance "bench".
func sealed(b *testing.B, n int, e audit.Entry) []repository.Record {
	b.Helper()
	out := make([]repository.Record, n)
	prev := ""
	for i := range n {
		ev, err := audit.Render(e, fmt.Sprintf("00000000-0000-4000-8000-%012d", i), t0.Add(time.Duration(i)*time.Millisecond), audit.Observer{})
		if err != nil {
			b.Fatal(err)
		}
		ts := t0.Add(time.Duration(i) * time.Millisecond).Format(chain.TimeLayout)
		_, hash := chain.Seal(nil, uint64(i+1), ts, prev, ev)
		out[i] = repository.Record{Instance: "bench", Record: chain.Record{Seq: uint64(i + 1), Time: ts, Prev: prev, Hash: hash, Event: ev}}
		prev = hash
	}
	return out
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

var (
	searchDBOnce sync.Once
	searchDB     string
	searchDBErr  error
)

// BenchmarkAuditorSearch measures the auditor's ITI-81 searches over a
// repository of MHG_BENCH_AUDIT_RECORDS records (default 1,000,000: 50,000
// patients, 200 organisations, 3 replicas, a year of records, one in 50
// denied, one in 500 break-the-glass), generated in the database from one
// rendered AuditEvent. It reports each query's p50 and p95. The database
// is kept for the run (dropped at the end) and built once (a few minutes).
func BenchmarkAuditorSearch(b *testing.B) {
	n := 1_000_000
	if v := os.Getenv("MHG_BENCH_AUDIT_RECORDS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	searchDBOnce.Do(func() { searchDB, searchDBErr = generate(n) })
	if searchDBErr != nil {
		b.Fatal(searchDBErr)
	}
	r, err := repository.Open(context.Background(), repository.Options{URL: searchDB})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	mid := t0.AddDate(0, 6, 0)
	queries := []struct {
		name string
		q    audit.Query
	}{
		{"patient", audit.Query{Patient: "Patient/gw-4711", Count: 20}},
		{"patient-date", audit.Query{Patient: "gw-4711", DateFrom: mid, DateTo: mid.AddDate(0, 1, 0), Count: 20}},
		{"agent-month", audit.Query{Agent: "org-17", DateFrom: mid, DateTo: mid.AddDate(0, 1, 0), Count: 20}},
		{"purpose-outcome-day", audit.Query{Purpose: "TREAT", Outcome: "4", DateFrom: mid, DateTo: mid.AddDate(0, 0, 1), Count: 20}},
		{"break-glass", audit.Query{BreakGlass: true, Count: 20}},
		{"newest-page-3", audit.Query{Count: 20, Offset: 40}},
	}
	for _, qq := range queries {
		b.Run(qq.name, func(b *testing.B) {
			var lat []time.Duration
			for b.Loop() {
				start := time.Now()
				if _, _, err := r.Search(context.Background(), qq.q); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds())/1000, "p95-ms")
		})
	}
}

// generate builds the search benchmark's database with n records.
func generate(n int) (url string, err error) {
	tb := &cleanupTB{}
	defer func() {
		if r := recover(); r != nil {
			if r != tb {
				panic(r)
			}
			err = fmt.Errorf("%s", tb.failed)
		}
	}()
	url = pgtest.NewDatabase(tb, "")
	ctx := context.Background()
	r, err := repository.Open(ctx, repository.Options{URL: url, Migrate: true, Logger: quiet})
	if err != nil {
		return "", err
	}
	defer r.Close()
	ev, err := audit.Render(audit.Entry{TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
		Requester:   auth.Requester{ClientID: "client-x", Org: "org-x", Country: "DE", Role: "clinician", PurposeOfUse: "TREAT"},
		Interaction: "read", ResourceType: "Patient", Patient: "Patient/gw-x", Sources: []string{"de-kbv"},
		Outcome: audit.OutcomeSuccess, Status: 200}, "ID", t0, audit.Observer{})
	if err != nil {
		return "", err
	}
	// The generated rows are not a chain (the search does not read one);
	// the keys are spread as an auditor's data would be.
	pgtest.Exec(tb, url, `
INSERT INTO audit_records (instance, seq, id, time, prev, hash, event, recorded, patient, agent_client, agent_org,
    purposes, outcome, country, operation, break_glass, trace_id)
SELECT 'r' || (i % 3), i, 'id-' || i, '', '', md5(i::text), replace($1, '"ID"', '"id-' || i || '"'),
    $2::timestamptz + (i * interval '31536 milliseconds'),
    'gw-' || (i * 7919 % 50000), 'client-' || (i % 400), 'org-' || (i % 200),
    CASE WHEN i % 500 = 0 THEN ARRAY['ETREAT', 'BTG'] WHEN i % 7 = 0 THEN ARRAY['PUBHLTH'] ELSE ARRAY['TREAT'] END,
    CASE WHEN i % 50 = 0 THEN '4' ELSE '0' END, 'DE', NULL, i % 500 = 0, md5('t' || i)
FROM generate_series(1, $3::bigint) AS i`, string(ev), t0, n)
	// What autovacuum does to an insert-only table soon after such a load
	// (it sets the visibility map the counts of Bundle.total rely on).
	pgtest.Exec(tb, url, `VACUUM ANALYZE audit_records`)
	return url, nil
}

// cleanupTB lets pgtest run outside a test (the search database is shared
// by the sub-benchmarks); its database is dropped by TestMain's cleanup.
type cleanupTB struct {
	testing.TB
	failed string
}

func (c *cleanupTB) Helper()                   {}
func (c *cleanupTB) Fatalf(f string, a ...any) { c.failed = fmt.Sprintf(f, a...); panic(c) }
func (c *cleanupTB) Logf(string, ...any)       {}
func (c *cleanupTB) Cleanup(fn func())         { cleanups = append(cleanups, fn) }

var cleanups []func()

func TestMain(m *testing.M) {
	code := m.Run()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	os.Exit(code)
}
