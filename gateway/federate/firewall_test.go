package federate

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/migrant-health/mhg/conformance"
	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/authz"
	"github.com/migrant-health/mhg/gateway/federate/federatetest"
	"github.com/migrant-health/mhg/mappings"
)

// ukSource serves the UK Core test patients, one of whom has an overseas
// visitor charging category (class S).
func ukSource(t *testing.T) *federatetest.Source {
	t.Helper()
	b, err := os.ReadFile("testdata/uk-core-patients.json")
	if err != nil {
		t.Fatal(err)
	}
	var bundle struct {
		Entry []struct {
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(b, &bundle); err != nil {
		t.Fatal(err)
	}
	src := &federatetest.Source{SourceID: "uk", SourceCountry: "GB", SourceProfile: "uk-core"}
	for _, e := range bundle.Entry {
		js := strings.ReplaceAll(string(e.Resource), "urn:uuid:", "Patient/")
		var probe struct{ ResourceType string }
		_ = json.Unmarshal([]byte(js), &probe)
		if probe.ResourceType == "Encounter" {
			continue
		}
		src.Resources = append(src.Resources, federatetest.Resource(t, js))
	}
	return src
}

func TestMigrationContextIsSplitAndFirewalled(t *testing.T) {
	t.Parallel()
	eng, err := mappings.Load()
	if err != nil {
		t.Fatal(err)
	}
	src := ukSource(t)
	d := &federatetest.Decider{Fn: func(in authz.Input) (authz.Decision, error) {
		if in.Phase == authz.PhaseRelease && in.Resource.Class == mappings.ClassSensitive {
			return authz.Decision{Reasons: []string{"firewall.test"}}, nil
		}
		return authz.Decision{Allow: true}, nil
	}}
	s, err := New(Options{Sources: []Source{src}, Mapper: eng, Decider: d, IDs: testCodec(t)})
	if err != nil {
		t.Fatal(err)
	}
	const up = "3dcf61d4-19e7-5c6d-b335-73d34d18bded"
	pid, _ := s.opts.IDs.Encode("uk", "Patient", up)
	req := Request{Interaction: "search-type", ResourceType: "Observation"}
	r, err := s.SearchByPatient(context.Background(), req, "Observation", pid)
	if err != nil {
		t.Fatal(err)
	}
	var sensitive []authz.Input
	for _, in := range d.Inputs() {
		if in.Phase == authz.PhaseRelease && in.Resource.Class == mappings.ClassSensitive {
			sensitive = append(sensitive, in)
		}
	}
	if len(sensitive) != 1 {
		t.Fatalf("want one class S release decision (the migration context), got %d", len(sensitive))
	}
	labels := map[string]bool{}
	for _, c := range sensitive[0].Resource.Security {
		labels[c.Code] = true
	}
	if !labels[conformance.CodeMIGSTAT] || !labels["R"] {
		t.Fatalf("migration context labels %v, want R and MIGSTAT", labels)
	}
	for _, e := range r.Entries {
		if resourceFacts(e.Resource).Class == mappings.ClassSensitive {
			t.Fatal("class S released against the policy")
		}
	}

	// With the firewall open, the migration context is released and can be
	// read by its own id, which is a sealed derived id.
	open := &federatetest.Decider{Fn: func(authz.Input) (authz.Decision, error) { return authz.Decision{Allow: true}, nil }}
	s.opts.Decider = open
	r, err = s.SearchByPatient(context.Background(), req, "Observation", pid)
	if err != nil {
		t.Fatal(err)
	}
	var mcID string
	for _, e := range r.Entries {
		if resourceFacts(e.Resource).Class == mappings.ClassSensitive {
			mcID = e.ID
		}
	}
	if mcID == "" {
		t.Fatal("the migration context is not among the patient's Observations")
	}
	if _, upstream, err := s.opts.IDs.Decode("Observation", mcID); err != nil || upstream != mappings.DerivedID(up, "migration-context") {
		t.Fatalf("derived id %q decodes to %q, %v", mcID, upstream, err)
	}
	read, err := s.Read(context.Background(), Request{Interaction: "read", ResourceType: "Observation"}, "Observation", mcID)
	if err != nil || len(read.Entries) != 1 || read.Entries[0].ID != mcID {
		t.Fatalf("read of the migration context: %+v, %v", read, err)
	}
	// The Patient itself carries nothing of class S, and its loss report
	// does not tell that class S data was split off. That the record held
	// an ethnic category is told at home only.
	for _, tt := range []struct {
		country      string
		wantDomestic bool
	}{{"GB", true}, {"DE", false}} {
		read := Request{Interaction: "read", ResourceType: "Patient", Requester: auth.Requester{Country: tt.country}}
		pr, err := s.Read(context.Background(), read, "Patient", pid)
		if err != nil {
			t.Fatal(err)
		}
		if resourceFacts(pr.Entries[0].Resource).Class != mappings.ClassClinical {
			t.Fatal("the Patient is class S")
		}
		domestic := false
		for _, is := range pr.Entries[0].Loss {
			if is.Code == "security" {
				t.Fatalf("the loss report reveals firewalled data: %+v", is)
			}
			domestic = domestic || is.Domestic
		}
		if domestic != tt.wantDomestic {
			t.Fatalf("requester in %s: origin-only issues reported = %v, want %v (%+v)", tt.country, domestic, tt.wantDomestic, pr.Entries[0].Loss)
		}
	}
}
