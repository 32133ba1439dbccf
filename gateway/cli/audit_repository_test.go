package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/migrant-health/mhg/gateway/audit"
	"github.com/migrant-health/mhg/gateway/audit/repository"
	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/internal/pgtest"
)

// TestAuditRepositoryCommands: keygen, migrate, then verify --database on
// a repository a replica shipped signed records to, before and after its
// tail is cut.
func TestAuditRepositoryCommands(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	prefix := filepath.Join(dir, "audit")
	code, out, errs := run(t, "audit", "keygen", "--out", prefix, "--name", "mhg-test")
	if code != 0 || !strings.HasPrefix(out, "mhg-test+") {
		t.Fatalf("keygen: %d %s %s", code, out, errs)
	}
	// A second keygen keeps the pair: checkpoints already signed must
	// still verify.
	if code2, out2, _ := run(t, "audit", "keygen", "--out", prefix, "--name", "mhg-test"); code2 != 0 || out2 != out {
		t.Fatalf("second keygen: %d %q, want the same verifier key %q", code2, out2, out)
	}
	db := pgtest.NewDatabase(t, "")
	if code, out, errs := run(t, "audit", "migrate", "--database", db); code != 0 || !strings.HasPrefix(out, "OK") {
		t.Fatalf("migrate: %d %s %s", code, out, errs)
	}

	ctx := context.Background()
	skey, err := os.ReadFile(prefix + ".key")
	if err != nil {
		t.Fatal(err)
	}
	repo, err := repository.Open(ctx, repository.Options{URL: db})
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	logPath := filepath.Join(dir, "audit.jsonl")
	l, err := audit.New(audit.Options{Path: logPath})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for range 6 {
		if _, err := l.Record(ctx, audit.Entry{Requester: auth.Requester{ClientID: "c", PurposeOfUse: "TREAT"},
			Interaction: "read", ResourceType: "Patient", Outcome: audit.OutcomeSuccess, Status: 200}); err != nil {
			t.Fatal(err)
		}
	}
	cp, err := repository.NewCheckpointer(ctx, repository.CheckpointerOptions{Repository: repo, Instance: "gw-a",
		SignerKey: string(skey), Interval: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	s, err := repository.NewShipper(repository.ShipperOptions{Repository: repo, Path: logPath, Log: l, Instance: "gw-a",
		Batch: 3, Shipped: cp.Shipped})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for {
		n, err := s.ShipOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}

	code, out, errs = run(t, "audit", "verify", "--database", db, "--key", prefix+".pub")
	if code != 0 || !strings.Contains(out, "OK: 1 instances, 6 records, 2 checkpoints") {
		t.Fatalf("verify: %d %s %s", code, out, errs)
	}
	pgtest.Exec(t, db, `ALTER TABLE audit_records DISABLE TRIGGER USER; DELETE FROM audit_records WHERE seq > 4`)
	code, out, _ = run(t, "audit", "verify", "--database", db, "--key", prefix+".pub")
	if code != exitFailure || !strings.Contains(out, "BROKEN at instance gw-a checkpoint at tree size 6") {
		t.Fatalf("verify after the cut: %d %s", code, out)
	}
	if code, _, _ := run(t, "audit", "verify", "--database", db, "some.jsonl"); code != exitUsage {
		t.Fatalf("FILE and --database: exit %d", code)
	}
}
