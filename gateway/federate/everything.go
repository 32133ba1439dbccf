package federate

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/migrant-health/mhg/gateway/summary"
)

// EverythingTypes are the types Patient/$everything returns besides
// Patient, in the order they are listed.
var EverythingTypes = summary.Types

// EverythingRequest is one Patient/$everything.
type EverythingRequest struct {
	// Patient names the patient.
	Patient PatientQuery
	// Types limits the records to these types (besides Patient, which is
	// always there); nil means EverythingTypes. A type outside
	// EverythingTypes is ErrInvalid.
	Types []string
}

// Everything returns every record of the patient the requester may see,
// from every linked source, under the same identity resolution and the
// same policy as Summary, but without merging or folding anything: each
// source's Patient and records are entries of their own. Entries are in a
// stable order (source order, Patient first, then by type and id), so a
// caller can page through them across requests.
func (l *Linker) Everything(ctx context.Context, req Request, er EverythingRequest) (*Result, error) {
	res := &Result{}
	types := er.Types
	if types == nil {
		types = EverythingTypes
	}
	for _, t := range types {
		if !slices.Contains(EverythingTypes, t) && t != "Patient" {
			return res, fmt.Errorf("%w: $everything does not return type %s", ErrInvalid, safeName(t))
		}
	}
	var fetch []string
	for _, t := range EverythingTypes {
		if slices.Contains(types, t) {
			fetch = append(fetch, t)
		}
	}
	lk, err := l.gather(ctx, req, res, er.Patient, fetch)
	if err != nil {
		return res, err
	}
	rank := map[string]int{}
	for i, t := range EverythingTypes {
		rank[t] = i
	}
	for _, ln := range lk.links {
		res.Entries = append(res.Entries, ln.patient)
		recs := slices.Clone(ln.entries)
		sort.SliceStable(recs, func(i, j int) bool {
			if recs[i].Type != recs[j].Type {
				return rank[recs[i].Type] < rank[recs[j].Type]
			}
			return recs[i].ID < recs[j].ID
		})
		res.Entries = append(res.Entries, recs...)
	}
	return res, nil
}

// Provenance renders the mhp-provenance of one released entry (its
// national original named by source and gateway id), recorded at t.
func (l *Linker) Provenance(e Entry, t time.Time) ([]byte, error) {
	src, ok := l.svc.source(e.Source)
	if !ok {
		return nil, fmt.Errorf("provenance: entry of an unknown source")
	}
	return summary.Provenance(summary.Record{Type: e.Type, ID: e.ID}, l.summarySource(src), t)
}

// safeName quotes a client-given name for an error, cut short.
func safeName(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return fmt.Sprintf("%q", s)
}
