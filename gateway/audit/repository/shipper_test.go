package repository_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/migrant-health/mhg/gateway/audit"
	"github.com/migrant-health/mhg/gateway/audit/chain"
	"github.com/migrant-health/mhg/gateway/audit/repository"
	"github.com/migrant-health/mhg/gateway/auth"
)

// flaky fails every insert while down is set, as a database that is away.
type flaky struct {
	repo *repository.Repository
	down atomic.Bool
}

func (f *flaky) Insert(ctx context.Context, recs []repository.Record) (int, error) {
	if f.down.Load() {
		return 0, fmt.Errorf("%w: connection refused", repository.ErrUnavailable)
	}
	return f.repo.Insert(ctx, recs)
}

func record(t testing.TB, l *audit.Log, n int) {
	t.Helper()
	for i := range n {
		e := audit.Entry{Time: t0, TraceID: fmt.Sprintf("%032x", i+1), Requester: auth.Requester{ClientID: "c", Org: "o", Country: "NL", PurposeOfUse: "TREAT"},
			Interaction: "read", ResourceType: "Patient", Patient: "Patient/gw-1", Outcome: audit.OutcomeSuccess, Status: 200}
		if _, err := l.Record(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
}

func count(t testing.TB, r *repository.Repository, instance string) (n int, last uint64) {
	t.Helper()
	err := r.Records(context.Background(), instance, 1, func(rec chain.Record) error {
		n++
		if rec.Seq != last+1 {
			return fmt.Errorf("seq %d after %d", rec.Seq, last)
		}
		last = rec.Seq
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n, last
}

func shipAll(t testing.TB, s *repository.Shipper) {
	t.Helper()
	for {
		n, err := s.ShipOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

func TestShipperResumes(t *testing.T) {
	r, _ := open(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	l, err := audit.New(audit.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	record(t, l, 10)
	opts := repository.ShipperOptions{Repository: r, Path: path, Log: l, Instance: "gw-a", Batch: 4}
	s, err := repository.NewShipper(opts)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.ShipOnce(context.Background()); err != nil || n != 4 {
		t.Fatalf("first batch: %d, %v; want 4", n, err)
	}
	shipAll(t, s)
	if st := s.Status(); st.Shipped != 10 || st.Unshipped != 0 {
		t.Fatalf("status after shipping: %+v", st)
	}
	s.Close()

	// A restart resumes after the checkpoint and ships only what is new.
	record(t, l, 5)
	s, err = repository.NewShipper(opts)
	if err != nil {
		t.Fatal(err)
	}
	if st := s.Status(); st.Shipped != 10 || st.Unshipped != 5 {
		t.Fatalf("status after restart: %+v", st)
	}
	shipAll(t, s)
	s.Close()
	if n, last := count(t, r, "gw-a"); n != 15 || last != 15 {
		t.Fatalf("repository holds %d records up to seq %d, want 15", n, last)
	}

	// Without its checkpoint the shipper sends everything again; the
	// repository keeps one copy.
	if err := os.Remove(path + ".shipped"); err != nil {
		t.Fatal(err)
	}
	s, err = repository.NewShipper(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	shipAll(t, s)
	if n, _ := count(t, r, "gw-a"); n != 15 {
		t.Fatalf("after shipping again: %d records, want 15", n)
	}
}

// TestShipperFailsClosed: while the repository is away, records wait in the
// local log; past max_unshipped the gate closes (503) and opens again once
// Run has shipped the backlog.
func TestShipperFailsClosed(t *testing.T) {
	r, _ := open(t)
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := audit.New(audit.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ins := &flaky{repo: r}
	ins.down.Store(true)
	s, err := repository.NewShipper(repository.ShipperOptions{Repository: ins, Path: path, Log: l, Instance: "gw-a",
		MaxUnshipped: 5, Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()

	record(t, l, 4)
	if err := s.Gate(); err != nil {
		t.Fatalf("4 waiting of 5 allowed: %v", err)
	}
	record(t, l, 1)
	err = s.Gate()
	if !errors.Is(err, audit.ErrUnavailable) || !errors.Is(err, repository.ErrBacklog) {
		t.Fatalf("5 waiting: gate %v, want ErrUnavailable and ErrBacklog", err)
	}
	if err := s.Check(ctx); err == nil {
		t.Fatal("readiness check passes with a full backlog")
	}
	deadline := time.Now().Add(30 * time.Second)
	for s.Status().Error == "" || s.Status().Lag == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("status never showed the failure and lag: %+v", s.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}

	ins.down.Store(false)
	for s.Gate() != nil || s.Status().Unshipped != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("backlog not shipped: %+v", s.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := s.Status(); st.Error != "" || st.Lag != 0 {
		t.Fatalf("status after catching up: %+v", st)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n, _ := count(t, r, "gw-a"); n != 5 {
		t.Fatalf("repository holds %d records, want 5", n)
	}
}
