package audit

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Searcher answers AuditEvent searches: the Log, or an audit repository
// that implements the same Query.
type Searcher interface {
	Search(ctx context.Context, q Query) ([]json.RawMessage, int, error)
}

var _ Searcher = (*Log)(nil)

// DisclosureQuery asks for a patient's disclosure report.
type DisclosureQuery struct {
	// Patients are the gateway Patient ids of the person (one per source
	// that holds them), with or without "Patient/".
	Patients []string
	// From and To bound the period (From <= recorded < To); zero is open.
	From, To time.Time
}

// Disclosures returns every AuditEvent that names one of the patients, in
// the order they were recorded: the accounting of disclosures that HIPAA
// 164.528, GDPR Art. 15(1)(c) and NEN 7513 ask for (who received what, when,
// for which purpose, under which agreement, and what was refused). The
// events come back both read (for the report's rows) and as recorded (for
// the FHIR operation), in the same order.
func Disclosures(ctx context.Context, s Searcher, q DisclosureQuery) ([]Event, []json.RawMessage, error) {
	type found struct {
		ev  Event
		raw json.RawMessage
	}
	var all []found
	seen := map[string]bool{}
	for _, p := range q.Patients {
		raws, _, err := s.Search(ctx, Query{Patient: strings.TrimPrefix(p, "Patient/"), DateFrom: q.From, DateTo: q.To})
		if err != nil {
			return nil, nil, fmt.Errorf("audit: disclosures: %w", err)
		}
		for _, raw := range raws {
			ev, err := ParseEvent(raw)
			if err != nil {
				return nil, nil, fmt.Errorf("audit: disclosures: %w", err)
			}
			if seen[ev.ID] {
				continue
			}
			seen[ev.ID] = true
			all = append(all, found{ev, raw})
		}
	}
	slices.SortStableFunc(all, func(a, b found) int { return a.ev.Recorded.Compare(b.ev.Recorded) })
	events := make([]Event, len(all))
	raws := make([]json.RawMessage, len(all))
	for i, f := range all {
		events[i], raws[i] = f.ev, f.raw
	}
	return events, raws, nil
}

// DisclosureColumns are the columns of the disclosure report's CSV.
var DisclosureColumns = []string{
	"recorded", "audit_event", "recipient_organisation", "recipient_country", "recipient_role",
	"purpose", "break_glass", "interaction", "resource_types", "data_classes", "legal_basis",
	"agreements", "sources", "outcome", "http_status",
}

// DisclosureRow is one event as a row of the disclosure report, in the
// order of DisclosureColumns.
func DisclosureRow(e Event) []string {
	what := e.Interaction
	if e.Operation != "" {
		what += " $" + e.Operation
	}
	if e.ResourceType != "" {
		what += " " + e.ResourceType
	}
	return []string{
		e.Recorded.UTC().Format(time.RFC3339), e.ID, e.Org, e.Country, e.Role,
		e.Purpose, strconv.FormatBool(e.BreakGlass), what, strings.Join(e.ReleasedTypes(), " "),
		strings.Join(e.DataClasses(), " "), strings.Join(e.Rules(), " "), strings.Join(e.Agreements(), " "),
		strings.Join(e.Sources, " "), e.Outcome, strconv.Itoa(e.Status),
	}
}

// WriteDisclosuresCSV writes the report as CSV with a header line.
func WriteDisclosuresCSV(w io.Writer, events []Event) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(DisclosureColumns); err != nil {
		return fmt.Errorf("audit: disclosures CSV: %w", err)
	}
	for _, e := range events {
		if err := cw.Write(DisclosureRow(e)); err != nil {
			return fmt.Errorf("audit: disclosures CSV: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("audit: disclosures CSV: %w", err)
	}
	return nil
}
