package federate

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/migrant-health/mhg/conformance"
	"github.com/migrant-health/mhg/gateway/authz"
	"github.com/migrant-health/mhg/gateway/federate/federatetest"
	"github.com/migrant-health/mhg/mappings"
)

// The migration context split off a Patient (class S) never enters the
// Composition; it travels in the document only when the release phase
// allows it (explicit consent), and then raises the high-water mark.
func TestSummaryKeepsClassSOutOfTheComposition(t *testing.T) {
	t.Parallel()
	eng, err := mappings.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, consent := range []bool{false, true} {
		name := map[bool]string{false: "withheld", true: "released with consent"}[consent]
		t.Run(name, func(t *testing.T) {
			src := ukSource(t)
			d := &federatetest.Decider{Fn: func(in authz.Input) (authz.Decision, error) {
				if in.Phase == authz.PhaseRelease && in.Resource.Class == mappings.ClassSensitive && !consent {
					return authz.Decision{Reasons: []string{"firewall.migstat.consent-missing"}}, nil
				}
				return authz.Decision{Allow: true}, nil
			}}
			s, err := New(Options{Sources: []Source{src}, Mapper: eng, Decider: d, IDs: testCodec(t)})
			if err != nil {
				t.Fatal(err)
			}
			l, err := NewLinker(s, LinkerOptions{})
			if err != nil {
				t.Fatal(err)
			}
			pid, _ := s.opts.IDs.Encode("uk", "Patient", "3dcf61d4-19e7-5c6d-b335-73d34d18bded")
			_, b, err := l.Summary(context.Background(), Request{Interaction: "operation", ResourceType: "Patient", Operation: "summary"},
				SummaryRequest{Patient: PatientQuery{ID: pid}, Language: "nl"})
			if err != nil {
				t.Fatal(err)
			}
			issues := conformance.Check(b)
			if conformance.HasErrors(issues) {
				t.Fatalf("does not conform: %v", issues)
			}
			var doc struct {
				Meta struct {
					Security []struct{ System, Code string }
				}
				Entry []struct{ Resource json.RawMessage }
			}
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatal(err)
			}
			var comp string
			var contextIDs []string
			for _, e := range doc.Entry {
				var r struct {
					ResourceType, ID string
					Meta             struct{ Profile []string }
				}
				_ = json.Unmarshal(e.Resource, &r)
				if r.ResourceType == "Composition" {
					comp = string(e.Resource)
				}
				if len(r.Meta.Profile) > 0 && r.Meta.Profile[0] == conformance.ProfileMigrationContext {
					contextIDs = append(contextIDs, r.ID)
				}
			}
			for _, id := range contextIDs {
				if strings.Contains(comp, id) {
					t.Fatal("the Composition references the migration context")
				}
			}
			conf := doc.Meta.Security[0].Code
			if consent {
				if len(contextIDs) != 1 || conf != "R" {
					t.Fatalf("migration contexts %v, confidentiality %s; want one, R", contextIDs, conf)
				}
			} else if len(contextIDs) != 0 || conf != "N" || strings.Contains(string(b), "OverseasVisitor") || strings.Contains(string(b), "migration-context") {
				t.Fatalf("withheld class S data is in the document (contexts %v, confidentiality %s)", contextIDs, conf)
			}
		})
	}
}
