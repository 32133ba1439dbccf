package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/migrant-health/mhg/gateway/audit/repository"
	"github.com/migrant-health/mhg/gateway/authz"
	"github.com/migrant-health/mhg/gateway/config"
	"github.com/migrant-health/mhg/gateway/internal/pgtest"
)

// TestAuditRepositoryShared: two replicas ship to one repository, and an
// auditor's search on either finds what the other disclosed; /readyz shows
// the instance and how far shipping has come.
func TestAuditRepositoryShared(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t, "")
	replica := func(name string) *gateway {
		return startGateway(t, func(c *config.Config) {
			c.Audit.DatabaseURL, c.Audit.Instance = db, name
			c.Policy.DecisionLog = filepath.Join(t.TempDir(), "decisions.jsonl")
		}, Options{})
	}
	a, b := replica("gw-a"), replica("gw-b")
	readA := a.get(t, "/Patient?identifier="+aminaPassport, a.token(t, "DE", "clinician", "TREAT"))
	readB := b.get(t, "/Patient?identifier="+aminaPassport, b.token(t, "DE", "clinician", "TREAT"))
	if readA.status != 200 || readB.status != 200 {
		t.Fatalf("searches: %d %d", readA.status, readB.status)
	}
	traces := []string{readA.header.Get("X-Request-Id"), readB.header.Get("X-Request-Id")}

	// Shipping is asynchronous: wait until both replicas' searches show
	// both disclosures, then compare what they answer.
	var pages [2][]string
	deadline := time.Now().Add(60 * time.Second)
	for {
		for i, g := range []*gateway{a, b} {
			r := g.get(t, "/AuditEvent?purpose=TREAT&_count=50", g.token(t, "DE", "auditor", "HCOMPL"))
			if r.status != 200 {
				t.Fatalf("auditor search on replica %d: %d %s", i, r.status, r.body)
			}
			pages[i] = nil
			for _, ev := range r.entries("match") {
				pages[i] = append(pages[i], ev["id"].(string)+" "+string(mustMarshal(t, ev["entity"])))
			}
		}
		if containsAll(pages[0], traces) && containsAll(pages[1], traces) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replicas' searches do not both show both disclosures (traces %v):\n%v\n%v", traces, pages[0], pages[1])
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(pages[0]) != len(pages[1]) {
		t.Fatalf("replicas answer %d and %d events", len(pages[0]), len(pages[1]))
	}
	for i := range pages[0] {
		if pages[0][i] != pages[1][i] {
			t.Fatalf("replicas differ at event %d", i)
		}
	}

	// Both replicas' decision logs reach the repository, each decision
	// naming its replica and policy revision.
	repo, err := repository.Open(context.Background(), repository.Options{URL: db})
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	deadline = time.Now().Add(60 * time.Second)
	for {
		byInstance := map[string]int{}
		err := repo.Range(context.Background(), time.Time{}, time.Time{}, func(e authz.LogEntry) error {
			if e.Revision() == "" {
				return fmt.Errorf("decision %s names no policy revision", e.DecisionID)
			}
			byInstance[e.Labels["instance"]]++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if byInstance["gw-a"] > 0 && byInstance["gw-b"] > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("decisions in the repository by instance: %v", byInstance)
		}
		time.Sleep(100 * time.Millisecond)
	}

	r := a.get(t, "http://"+a.cfg.Listen+"/readyz", "")
	var ready struct {
		Status   string `json:"status"`
		Instance string `json:"instance"`
		Revision string `json:"policy_revision"`
		Shipping struct {
			Instance  string `json:"instance"`
			Shipped   uint64 `json:"shipped_seq"`
			Unshipped uint64 `json:"unshipped"`
		} `json:"audit_shipping"`
	}
	if err := json.Unmarshal(r.body, &ready); err != nil || r.status != 200 {
		t.Fatalf("readyz: %d %s", r.status, r.body)
	}
	if ready.Instance != "gw-a" || ready.Shipping.Instance != "gw-a" || ready.Shipping.Shipped == 0 || ready.Revision == "" {
		t.Fatalf("readyz: %s", r.body)
	}
}

func containsAll(page []string, subs []string) bool {
	for _, s := range subs {
		found := false
		for _, p := range page {
			if strings.Contains(p, s) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// TestAuditBacklogFailsClosed: with the repository unreachable, records
// wait in the local log; once audit.max_unshipped wait, requests for data
// answer 503 and /readyz is not ready.
func TestAuditBacklogFailsClosed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "postgres://mhg@" + ln.Addr().String() + "/audit?sslmode=disable&connect_timeout=2"
	ln.Close()
	g := startGateway(t, func(c *config.Config) {
		c.Audit.DatabaseURL, c.Audit.Migrate, c.Audit.MaxUnshipped = dead, false, 2
	}, Options{})
	clin := g.token(t, "DE", "clinician", "TREAT")
	for i := range 2 {
		if r := g.get(t, "/Patient?identifier="+aminaPassport, clin); r.status != 200 {
			t.Fatalf("request %d within the bound: %d %s", i, r.status, r.body)
		}
	}
	r := g.get(t, "/Patient?identifier="+aminaPassport, clin)
	if r.status != 503 {
		t.Fatalf("request past the bound: %d %s", r.status, r.body)
	}
	if r := g.get(t, "http://"+g.cfg.Listen+"/readyz", ""); r.status != 503 {
		t.Fatalf("readyz past the bound: %d %s", r.status, r.body)
	}
}
