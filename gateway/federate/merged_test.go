package federate

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/migrant-health/mhg/gateway/authz"
	"github.com/migrant-health/mhg/gateway/federate/federatetest"
	"github.com/migrant-health/mhg/gateway/source"
	"github.com/migrant-health/mhg/mappings"
)

// newMergedFixture is one source (testdata/merged/m) that merged records.
func newMergedFixture(t *testing.T) *linkerFixture {
	t.Helper()
	eng, err := mappings.Load()
	if err != nil {
		t.Fatal(err)
	}
	b, err := source.OpenBundle(source.Options{ID: "m", Country: "UA", Profile: "ips", Kind: source.KindBundle,
		Dir: filepath.Join("testdata", "merged", "m"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	cs := &countingSource{Source: b}
	d := &federatetest.Decider{Fn: func(in authz.Input) (authz.Decision, error) {
		return authz.Decision{Allow: true, Reasons: []string{"test.allow"}}, nil
	}}
	svc, err := New(Options{Sources: []Source{cs}, Mapper: eng, Decider: d, IDs: testCodec(t), Deadline: 5 * time.Second, SourceTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewLinker(svc, LinkerOptions{Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	return &linkerFixture{src: map[string]*countingSource{"m": cs}, svc: svc, l: l}
}

// A merged pair is one person: the surviving record's data, and the
// document and its OperationOutcome say the source had merged records.
func TestSummaryMergedRecords(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		q    func(f *linkerFixture) PatientQuery
		want string // the upstream id of the Patient the document is about
	}{
		{"identifier finds both records", func(*linkerFixture) PatientQuery {
			return PatientQuery{Identifier: "http://hl7.org/fhir/sid/passport-UKR|M1"}
		}, "pm-new"},
		{"the replaced record asked for by id", func(f *linkerFixture) PatientQuery {
			return PatientQuery{ID: f.id(t, "m", "Patient", "pm-old")}
		}, "pm-new"},
		{"identifier of a record replaced twice", func(*linkerFixture) PatientQuery {
			return PatientQuery{Identifier: "http://hl7.org/fhir/sid/passport-UKR|M2"}
		}, "pm-new"},
		{"seealso: the active record", func(*linkerFixture) PatientQuery {
			return PatientQuery{Identifier: "http://hl7.org/fhir/sid/passport-UKR|S1"}
		}, "ps1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newMergedFixture(t)
			_, b, err := f.l.Summary(context.Background(), deClinician, SummaryRequest{Patient: tt.q(f)})
			if err != nil {
				t.Fatal(err)
			}
			d := takeApart(t, b)
			var patients []string
			for ref := range d.entries {
				if strings.HasPrefix(ref, "Patient/") {
					patients = append(patients, ref)
				}
			}
			if len(patients) != 1 {
				t.Fatalf("patients %v, want one person", patients)
			}
			p := d.entries[patients[0]]
			if tt.want == "pm-new" {
				if p["birthDate"] != "1985-04-02" || !strings.Contains(string(d.raw), "Kovalenko") || strings.Contains(string(d.raw), "Oldrecord") {
					t.Errorf("not the surviving record's data: %v", p)
				}
				if got := d.sourcesOf("Condition"); got["m"] != 1 {
					t.Errorf("the surviving record's condition is missing: %v", got)
				}
			}
			if !strings.Contains(d.outcome, `"severity":"warning"`) || !strings.Contains(d.outcome, "had merged this person's records") {
				t.Errorf("the OperationOutcome does not say the records were merged: %s", d.outcome)
			}
			if !strings.Contains(string(d.raw), "surviving record is used") {
				t.Errorf("the narrative does not say how the records were linked")
			}
		})
	}
}

// Two unrelated persons behind one identifier: no safe answer, and never
// "not found" for persons that exist.
func TestSummaryAmbiguousIdentifier(t *testing.T) {
	t.Parallel()
	f := newMergedFixture(t)
	res, _, err := f.l.Summary(context.Background(), deClinician, SummaryRequest{Patient: PatientQuery{Identifier: "http://hl7.org/fhir/sid/passport-UKR|X1"}})
	if !errors.Is(err, ErrAmbiguous) || errors.Is(err, ErrNotFound) {
		t.Fatalf("err %v, want ErrAmbiguous", err)
	}
	if len(res.Warnings) != 1 || res.Warnings[0].Code != WarnAmbiguous {
		t.Errorf("warnings %+v", res.Warnings)
	}
}
