package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/migrant-health/mhg/gateway/audit/chain"
)

// Query selects AuditEvents, as GET /fhir/AuditEvent's parameters do. Empty
// fields match everything.
type Query struct {
	// Patient is "Patient/<gateway id>" or the bare id (patient=).
	Patient string
	// Agent is the requester's client id or organisation identifier
	// (agent=).
	Agent string
	// DateFrom and DateTo bound AuditEvent.recorded: DateFrom <= recorded <
	// DateTo. Zero means unbounded (date=ge..., date=lt...).
	DateFrom, DateTo time.Time
	// Purpose is a PurposeOfUse code (purpose=), BTG included.
	Purpose string
	// Country is the requester's ISO 3166-1 alpha-2 country.
	Country string
	// BreakGlass selects the requests made with break-the-glass.
	BreakGlass bool
	// Operation is the operation asked for, without "$" (the console's
	// reviews are "review-break-glass").
	Operation string
	// Outcome is an AuditEvent outcome code (0, 4, 8, 12) or an Entry
	// outcome (success, denied, failed) (outcome=).
	Outcome string
	// Count is the page size; zero means every match. Offset skips that
	// many matches first (newest first).
	Count, Offset int
}

// indexEntry is what the index keeps of one record: where its line is and
// the values Query matches on.
type indexEntry struct {
	off      int64
	n        int
	seq      uint64
	recorded int64 // Unix microseconds
	patient  string
	agents   []string
	purposes []string
	outcome  string
	country  string
	op       string
	btg      bool
}

// index holds an entry per record in file order. Entries never change once
// added, so a search can copy the slice header and read without a lock.
type index struct {
	entries []indexEntry
}

func (ix *index) add(seq uint64, off int64, n int, event []byte) {
	ix.addKeys(seq, off, n, keysOf(event))
}

// addKeys indexes a record whose keys were read before (keysOf), so that
// the writer does not parse events while records wait for their fsync.
func (ix *index) addKeys(seq uint64, off int64, n int, e indexEntry) {
	e.off, e.n, e.seq = off, n, seq
	ix.entries = append(ix.entries, e)
}

// keysOf reads the index keys of a rendered event.
func keysOf(event []byte) indexEntry {
	if k, ok := KeysOf(event); ok {
		return indexEntryOf(k)
	}
	return indexEntry{}
}

// indexEntryOf is the index entry of an event's keys.
func indexEntryOf(k Keys) indexEntry {
	var e indexEntry
	if !k.Recorded.IsZero() {
		e.recorded = k.Recorded.UnixMicro()
	}
	e.patient, e.agents, e.purposes, e.outcome = k.Patient, k.Agents, k.Purposes, k.Outcome
	e.country, e.op, e.btg = k.Country, k.Operation, k.BreakGlass
	return e
}

func (q Query) matches(e *indexEntry) bool {
	if q.Patient != "" && e.patient != strings.TrimPrefix(q.Patient, "Patient/") {
		return false
	}
	if q.Agent != "" && !slices.Contains(e.agents, q.Agent) {
		return false
	}
	if q.Purpose != "" && !slices.Contains(e.purposes, q.Purpose) {
		return false
	}
	if q.Outcome != "" && e.outcome != outcomeFilter(q.Outcome) {
		return false
	}
	if q.Country != "" && e.country != q.Country {
		return false
	}
	if q.BreakGlass && !e.btg {
		return false
	}
	if q.Operation != "" && e.op != q.Operation {
		return false
	}
	if !q.DateFrom.IsZero() && e.recorded < q.DateFrom.UnixMicro() {
		return false
	}
	if !q.DateTo.IsZero() && e.recorded >= q.DateTo.UnixMicro() {
		return false
	}
	return true
}

func outcomeFilter(o string) string {
	switch o {
	case OutcomeSuccess:
		return "0"
	case OutcomeDenied:
		return "4"
	case OutcomeFailed:
		return "8"
	}
	return o
}

// Search returns the AuditEvents (R4 JSON) that match q, newest first, one
// page of them, and the total number of matches. The events are read from
// the file, so they are exactly what the chain vouches for.
func (l *Log) Search(ctx context.Context, q Query) ([]json.RawMessage, int, error) {
	if q.Count < 0 || q.Offset < 0 {
		return nil, 0, fmt.Errorf("audit: search: negative count or offset")
	}
	l.mu.RLock()
	entries := l.index.entries
	l.mu.RUnlock()

	var page []*indexEntry
	total := 0
	for i := len(entries) - 1; i >= 0; i-- {
		e := &entries[i]
		if !q.matches(e) {
			continue
		}
		if total >= q.Offset && (q.Count == 0 || len(page) < q.Count) {
			page = append(page, e)
		}
		total++
	}

	out := make([]json.RawMessage, 0, len(page))
	for _, e := range page {
		if err := ctx.Err(); err != nil {
			return nil, 0, fmt.Errorf("audit: search: %w", err)
		}
		line := make([]byte, e.n)
		if _, err := l.f.ReadAt(line, e.off); err != nil {
			return nil, 0, fmt.Errorf("audit: search: read record %d: %w", e.seq, err)
		}
		rec, err := chain.Parse(line[:len(line)-1])
		if err != nil {
			return nil, 0, fmt.Errorf("audit: search: record %d changed on disk: %w", e.seq, err)
		}
		out = append(out, rec.Event)
	}
	return out, total, nil
}
