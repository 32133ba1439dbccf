package console

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/migrant-health/mhg/gateway/audit"
	"github.com/migrant-health/mhg/gateway/audit/chain"
	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/authz"
)

// writeAuditLog writes n AuditEvents as a hash-chained log (as the audit
// log writes them, without an fsync per record) and opens it.
func writeAuditLog(b *testing.B, n int) *audit.Log {
	b.Helper()
	path := filepath.Join(b.TempDir(), "audit.jsonl")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	countries := []string{"DE", "NL", "UA", "US"}
	var line []byte
	prev := ""
	for i := range n {
		r := auth.Requester{ClientID: "ehr-" + countries[i%4], Org: "org-" + countries[i%4], Country: countries[i%4], Role: "clinician",
			PurposeOfUse: "TREAT"}
		r.BreakGlass = i%97 == 0
		at := start.Add(time.Duration(i) * time.Second)
		ev, err := audit.Render(audit.Entry{Time: at, TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Requester: r, Interaction: "read",
			ResourceType: "Patient", Patient: fmt.Sprintf("Patient/de-sample.p%d", i%5000), Sources: []string{"de-sample"},
			Released: map[string]int{"Patient": 1}, Outcome: audit.OutcomeSuccess, Status: 200,
			Decisions: []audit.Decision{{ID: fmt.Sprintf("dec-%d", i), Phase: "release", Allow: true, Reasons: []string{"access.domestic"}, Revision: "r1"}},
		}, fmt.Sprintf("ev-%d", i), at, audit.Observer{})
		if err != nil {
			b.Fatal(err)
		}
		var hash string
		line, hash = chain.Seal(line[:0], uint64(i+1), at.Format(chain.TimeLayout), prev, ev)
		prev = hash
		if _, err := w.Write(line); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	l, err := audit.New(audit.Options{Path: path, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l
}

// discardAuditor takes the console's own records out of the measurement:
// the audit log's fsync is measured in package audit.
type discardAuditor struct{}

func (discardAuditor) Record(context.Context, audit.Entry) (string, error) { return "x", nil }

// BenchmarkTimeline renders a filtered page of the audit timeline over
// 100k AuditEvents, next to its baseline: the audit search for the same
// page, which the FHIR AuditEvent search runs too.
func BenchmarkTimeline(b *testing.B) {
	l := writeAuditLog(b, 100_000)
	engine, err := authz.New(authz.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(engine.Close)
	c, err := New(Options{Policy: engine, Auditor: discardAuditor{}, AuditSearch: l, Chain: l})
	if err != nil {
		b.Fatal(err)
	}
	s := c.sessions.create(Session{Subject: "auditor-1", Name: "auditor", Roles: []string{"auditor"}, Purpose: "HCOMPL"})
	form := url.Values{"csrf": {s.CSRF}, "country": {"NL"}, "offset": {"100"}}.Encode()
	q := audit.Query{Country: "NL", Count: PageSize, Offset: 100}

	b.Run("baseline=search", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if raws, total, err := l.Search(context.Background(), q); err != nil || len(raws) != PageSize || total != 25_000 {
				b.Fatalf("%d of %d, %v", len(raws), total, err)
			}
		}
	})
	b.Run("page", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			req := httptest.NewRequest(http.MethodPost, "/console/audit", strings.NewReader(form))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.AddCookie(&http.Cookie{Name: CookieName, Value: s.ID})
			w := httptest.NewRecorder()
			c.ServeHTTP(w, req)
			if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "25000 audit record(s)") {
				b.Fatalf("%d", w.Code)
			}
		}
	})
}

// BenchmarkImpact replays 10k recorded decisions against a draft, next to
// its baseline: reading the same decisions from the log.
func BenchmarkImpact(b *testing.B) {
	path := filepath.Join(b.TempDir(), "decisions.jsonl")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	engine, err := authz.New(authz.Options{DecisionLog: w, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return at }})
	if err != nil {
		b.Fatal(err)
	}
	countries := []string{"DE", "NL", "UA", "US"}
	for i := range 10_000 {
		r := clinicianOf(countries[i%4])
		if _, err := engine.Decide(context.Background(), queryOf(r, countries[(i/4)%4])); err != nil {
			b.Fatal(err)
		}
	}
	engine.Close()
	w.Flush()
	f.Close()
	log := authz.DecisionFile{Path: path}
	files, _ := authz.PolicyFS("")
	draftFS, err := copyFS(files)
	if err != nil {
		b.Fatal(err)
	}
	draftFS[authz.AgreementsPath].Data = []byte(strings.Replace(string(draftFS[authz.AgreementsPath].Data), `"valid_until": "2034-12-31"`, `"valid_until": "2024-06-30"`, 1))
	draft, err := authz.Prepare(context.Background(), draftFS)
	if err != nil {
		b.Fatal(err)
	}
	from, to := at.Add(-time.Hour), at.Add(time.Hour)

	b.Run("baseline=read", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			n := 0
			if err := log.Range(context.Background(), from, to, func(authz.LogEntry) error { n++; return nil }); err != nil || n != 10_000 {
				b.Fatalf("%d, %v", n, err)
			}
		}
	})
	b.Run("replay", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			im, err := Replay(context.Background(), log, draft, from, to)
			if err != nil || im.Replayed != 10_000 {
				b.Fatalf("%+v, %v", im, err)
			}
		}
	})
}
