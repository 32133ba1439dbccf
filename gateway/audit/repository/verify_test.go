package repository_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/migrant-health/mhg/gateway/audit"
	"github.com/migrant-health/mhg/gateway/audit/repository"
	"github.com/migrant-health/mhg/gateway/internal/pgtest"
)

// signedRepo ships 20 records of replica gw-a in batches of 5 with a
// checkpoint after each (tree sizes 5, 10, 15, 20) and 3 of gw-b, and
// returns the repository, its URL, the checkpoint file and the verifier
// key.
func signedRepo(t *testing.T) (*repository.Repository, string, string, string) {
	t.Helper()
	r, url := open(t)
	ctx := context.Background()
	skey, vkey, err := repository.GenerateKey("mhg-test")
	if err != nil {
		t.Fatal(err)
	}
	ckFile := filepath.Join(t.TempDir(), "checkpoints")
	for inst, n := range map[string]int{"gw-a": 20, "gw-b": 3} {
		path := filepath.Join(t.TempDir(), "audit.jsonl")
		l, err := audit.New(audit.Options{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		record(t, l, n)
		cp, err := repository.NewCheckpointer(ctx, repository.CheckpointerOptions{Repository: r, Instance: inst,
			SignerKey: skey, Interval: time.Nanosecond, File: ckFile})
		if err != nil {
			t.Fatal(err)
		}
		s, err := repository.NewShipper(repository.ShipperOptions{Repository: r, Path: path, Log: l, Instance: inst,
			Batch: 5, Shipped: cp.Shipped})
		if err != nil {
			t.Fatal(err)
		}
		shipAll(t, s)
		if err := cp.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		s.Close()
		l.Close()
	}
	return r, url, ckFile, vkey
}

func TestVerify(t *testing.T) {
	r, _, ckFile, vkey := signedRepo(t)
	ctx := context.Background()
	notes, err := repository.ReadCheckpointFile(ckFile)
	if err != nil || len(notes) != 5 {
		t.Fatalf("checkpoint file: %d notes, %v; want 5 (4 of gw-a, 1 of gw-b)", len(notes), err)
	}
	rep, err := r.Verify(ctx, repository.VerifyOptions{VerifierKeys: []string{vkey}, Checkpoints: notes})
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %+v", err, rep.Failure)
	}
	if len(rep.Instances) != 2 || rep.Instances[0].Records != 20 || rep.Instances[0].Checkpoints != 4 || rep.Instances[1].Records != 3 {
		t.Fatalf("report: %+v", rep.Instances)
	}
	// A checkpoint signed with another key does not verify.
	_, other, _ := repository.GenerateKey("mhg-test")
	rep, err = r.Verify(ctx, repository.VerifyOptions{VerifierKeys: []string{other}})
	if !errors.Is(err, repository.ErrVerify) || rep.Failure == nil || rep.Failure.TreeSize == 0 {
		t.Fatalf("wrong key: %v %+v", err, rep.Failure)
	}
}

// TestTruncationDetected: an administrator who can get past the trigger
// cuts the tail of a replica's records, or changes one and recomputes the
// chain after it: the chain verifies, but the signed checkpoints do not.
func TestTruncationDetected(t *testing.T) {
	disable := `ALTER TABLE audit_records DISABLE TRIGGER USER; ALTER TABLE audit_checkpoints DISABLE TRIGGER USER;`
	// rechain recomputes the hashes and prev links of gw-a from seq 7 on,
	// as a forger who knows the format would.
	tests := []struct {
		name     string
		attack   string
		rechain  bool
		withFile bool
		want     string
	}{
		{"tail cut", `DELETE FROM audit_records WHERE instance = 'gw-a' AND seq > 12`, false, false,
			"instance gw-a checkpoint at tree size 15: it covers 15 records, the repository holds 12"},
		{"tail and its checkpoints cut, file kept", `DELETE FROM audit_records WHERE instance = 'gw-a' AND seq > 12;
			DELETE FROM audit_checkpoints WHERE instance = 'gw-a' AND tree_size > 12`, false, true,
			"instance gw-a checkpoint at tree size 15: it covers 15 records, the repository holds 12"},
		{"record changed and chain recomputed", `DELETE FROM audit_records WHERE instance = 'gw-a' AND seq > 12;
			DELETE FROM audit_checkpoints WHERE instance = 'gw-a' AND tree_size > 12;
			UPDATE audit_records SET event = replace(event, '"outcome":"0"', '"outcome":"4"') WHERE instance = 'gw-a' AND seq = 7`, true, false,
			"instance gw-a checkpoint at tree size 10: its signed root does not match the root of records 1..10"},
		{"record changed, chain not recomputed", `UPDATE audit_records SET event = replace(event, '"outcome":"0"', '"outcome":"4"') WHERE instance = 'gw-a' AND seq = 7`, false, false,
			"instance gw-a record seq 7: hash does not match the record's content"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, url, ckFile, vkey := signedRepo(t)
			pgtest.Exec(t, url, disable+tt.attack)
			if tt.rechain {
				rechain(t, r, url, "gw-a", 7)
			}
			opts := repository.VerifyOptions{VerifierKeys: []string{vkey}}
			if tt.withFile {
				// Without the second copy the cut goes unseen: the
				// repository alone then verifies.
				if rep, err := r.Verify(context.Background(), opts); err != nil || !rep.OK() {
					t.Fatalf("without the checkpoint file: %v", err)
				}
				if opts.Checkpoints, _ = repository.ReadCheckpointFile(ckFile); len(opts.Checkpoints) == 0 {
					t.Fatal("no checkpoint file")
				}
			}
			rep, err := r.Verify(context.Background(), opts)
			if !errors.Is(err, repository.ErrVerify) || rep.Failure == nil {
				t.Fatalf("verify after the attack: %v", err)
			}
			if got := rep.Failure.String(); !strings.HasPrefix(got, tt.want) {
				t.Fatalf("failure:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func rechain(t *testing.T, r *repository.Repository, _ string, instance string, from uint64) {
	t.Helper()
	repository.Rechain(t, r, instance, from)
}
