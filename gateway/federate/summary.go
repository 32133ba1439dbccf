package federate

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"

	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/gateway/summary"
	"github.com/migrant-health/mhg/gateway/telemetry"
	"github.com/migrant-health/mhg/mappings"
)

// ProfileIPSComposition is the IPS Composition canonical a client may ask
// a summary in; see summary.ProfileIPSComposition.
const ProfileIPSComposition = summary.ProfileIPSComposition

// SummaryRequest is one $summary.
type SummaryRequest struct {
	// Patient names the patient.
	Patient PatientQuery
	// Language is the narrative language (narrative.Negotiate); a language
	// without phrases, or "", gives English.
	Language string
	// BaseURL is the FHIR base the document's fullUrls start with.
	BaseURL string
	// Profiles are claimed by the Composition besides the MHP one (the IPS
	// Composition canonical, when the client asked for it).
	Profiles []string
}

// Summary assembles the patient's International Patient Summary from every
// source the requester may ask: identity resolved across sources, every
// resource released by the policy, then rendered by the summary package
// (one merged Patient, duplicates folded, a Provenance per national
// original, narratives in sr.Language). Class S data (the migration
// context) is in the document only when the release phase allowed it,
// which takes the patient's explicit consent.
//
// The Result is returned with errors too, for the audit record.
func (l *Linker) Summary(ctx context.Context, req Request, sr SummaryRequest) (*Result, []byte, error) {
	ctx, span := tracer().Start(ctx, telemetry.SpanFederateSummary)
	defer span.End()
	res := &Result{}
	lk, err := l.gather(ctx, req, res, sr.Patient, summary.Types)
	if err != nil {
		return res, nil, err
	}
	doc, err := l.document(req, res, lk, sr)
	if err != nil {
		return res, nil, err
	}
	// The audit counts what left: every released record, from every
	// source, the folded duplicates too.
	for _, ln := range lk.ordered() {
		res.Entries = append(res.Entries, ln.patient)
		res.Entries = append(res.Entries, ln.entries...)
	}
	span.SetAttributes(attribute.Int(string(telemetry.AttrCount), len(res.Entries)))
	return res, doc, nil
}

// document renders the summary of lk, or returns the one rendered before
// from exactly the same inputs (documents). A request that asked for fresh
// data (Cache-Control: no-cache) gets a fresh rendering, which replaces
// the one kept.
func (l *Linker) document(req Request, res *Result, lk *linkage, sr SummaryRequest) ([]byte, error) {
	var key [sha256.Size]byte
	keep := false
	if l.docs != nil {
		key, keep = l.documentKey(req, res, lk, sr)
		if keep && !req.NoCache {
			if doc, ok := l.docs.Get(key); ok {
				return doc, nil
			}
		}
	}
	in, err := l.summaryInput(req, res, lk, sr)
	if err != nil {
		return nil, err
	}
	doc, err := l.render.Document(in)
	if err != nil {
		return nil, err
	}
	if keep {
		l.docs.Set(key, doc)
	}
	return doc, nil
}

// ordered are the links with the anchor's first, so that its record is
// kept when duplicates are otherwise equal. An anchor whose records could
// not be read is no longer among the links.
func (lk *linkage) ordered() []*link {
	out := []*link{}
	for _, ln := range lk.links {
		if ln == lk.anchor {
			out = append([]*link{ln}, out...)
		} else {
			out = append(out, ln)
		}
	}
	return out
}

// summaryInput turns the linkage into what the summary package renders.
func (l *Linker) summaryInput(req Request, res *Result, lk *linkage, sr SummaryRequest) (summary.Input, error) {
	in := summary.Input{
		Patient:          strings.TrimPrefix(res.Patient, "Patient/"),
		RequesterCountry: req.Requester.Country,
		Language:         sr.Language,
		BaseURL:          sr.BaseURL,
		Profiles:         sr.Profiles,
	}
	for _, ln := range lk.ordered() {
		p, err := l.record(ln.patient, sr.BaseURL)
		if err != nil {
			return in, err
		}
		sl := summary.Link{Source: l.summarySource(ln.src), Patient: p, LinkedBy: ln.how}
		for _, e := range ln.entries {
			r, err := l.record(e, sr.BaseURL)
			if err != nil {
				return in, err
			}
			sl.Records = append(sl.Records, r)
		}
		in.Links = append(in.Links, sl)
	}
	for _, w := range res.Warnings {
		sw := summary.Warning{Source: w.Source, Code: w.Code, Pages: w.Pages}
		if src, ok := l.svc.source(w.Source); ok {
			sw.Country = src.Country()
		}
		in.Warnings = append(in.Warnings, sw)
	}
	return in, nil
}

// record renders a released entry for the summary package, its
// attachments pointing to the gateway's $attachment route under base.
func (l *Linker) record(e Entry, base string) (summary.Record, error) {
	RouteAttachments(e.Resource, base)
	b, err := r4.Marshal(e.Resource)
	if err != nil {
		return summary.Record{}, fmt.Errorf("render %s: %w", e.Type, err)
	}
	return summary.Record{Type: e.Type, ID: e.ID, Resource: b, Loss: e.Loss,
		Sensitive: resourceFacts(e.Resource).Class == mappings.ClassSensitive}, nil
}

// summarySource names a source as the document does.
func (l *Linker) summarySource(src Source) summary.Source {
	return summary.Source{ID: src.ID(), Country: src.Country(), Profile: src.Profile(),
		MappingVersion: l.svc.mappingVersion(src.Profile())}
}
