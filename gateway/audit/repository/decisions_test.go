package repository_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/migrant-health/mhg/gateway/audit/repository"
	"github.com/migrant-health/mhg/gateway/authz"
)

func appendDecisions(t *testing.T, path string, from, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := from; i < from+n; i++ {
		e := authz.LogEntry{DecisionID: fmt.Sprintf("d-%03d", i), Labels: map[string]string{"instance": "gw-a"},
			Bundles: map[string]authz.LogBundle{"mhg": {Revision: "rev-1"}}, Path: "mhg/authz/decision",
			Result: map[string]any{"allow": i%2 == 0, "reasons": []any{"treatment-allowed"}}, Timestamp: t0.Add(time.Duration(i) * time.Minute)}
		b, _ := json.Marshal(e)
		if _, err := f.Write(append(b, '\n')); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDecisionShipper(t *testing.T) {
	r, _ := open(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	appendDecisions(t, path, 0, 7)
	opts := repository.DecisionShipperOptions{Repository: r, Path: path, Instance: "gw-a", Batch: 3}
	s, err := repository.NewDecisionShipper(opts)
	if err != nil {
		t.Fatal(err)
	}
	for {
		n, err := s.ShipOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	// A restart resumes after what was shipped.
	appendDecisions(t, path, 7, 3)
	if s, err = repository.NewDecisionShipper(opts); err != nil {
		t.Fatal(err)
	}
	if n, err := s.ShipOnce(ctx); err != nil || n != 3 {
		t.Fatalf("after restart: %d shipped, %v; want the 3 new", n, err)
	}
	// Shipped again from the start, nothing is duplicated.
	if err := os.Remove(path + ".shipped"); err != nil {
		t.Fatal(err)
	}
	if s, err = repository.NewDecisionShipper(opts); err != nil {
		t.Fatal(err)
	}
	for {
		if n, err := s.ShipOnce(ctx); err != nil {
			t.Fatal(err)
		} else if n == 0 {
			break
		}
	}
	var got []string
	err = r.Range(ctx, t0.Add(2*time.Minute), t0.Add(8*time.Minute), func(e authz.LogEntry) error {
		got = append(got, e.DecisionID)
		return nil
	})
	if err != nil || fmt.Sprint(got) != "[d-002 d-003 d-004 d-005 d-006 d-007]" {
		t.Fatalf("range: %v %v", got, err)
	}
	all := 0
	if err := r.Range(ctx, time.Time{}, time.Time{}, func(authz.LogEntry) error { all++; return nil }); err != nil || all != 10 {
		t.Fatalf("all decisions: %d, %v", all, err)
	}
	e, err := r.Find(ctx, "d-004")
	if err != nil || !e.Allowed() || e.Revision() != "rev-1" || e.Labels["instance"] != "gw-a" {
		t.Fatalf("find: %+v %v", e, err)
	}
	if _, err := r.Find(ctx, "d-999"); !errors.Is(err, authz.ErrDecisionNotFound) {
		t.Fatalf("unknown decision: %v", err)
	}
}
