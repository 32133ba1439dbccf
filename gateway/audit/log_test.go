package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/migrant-health/mhg/conformance/r4"

	"github.com/migrant-health/mhg/gateway/audit/chain"
)

// clock returns a Now that advances one minute per call from testTime.
func clock() func() time.Time {
	var mu sync.Mutex
	t := testTime
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Minute)
		return t
	}
}

func openLog(t *testing.T, path string, opts Options) *Log {
	t.Helper()
	opts.Path = path
	if opts.Now == nil {
		opts.Now = clock()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	l, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func recordN(t *testing.T, l *Log, n int) []string {
	t.Helper()
	var ids []string
	for i := 0; i < n; i++ {
		id, err := l.Record(context.Background(), entryFor([]string{OutcomeSuccess, OutcomeDenied, OutcomeFailed}[i%3]))
		if err != nil {
			t.Fatalf("Record %d: %v", i, err)
		}
		ids = append(ids, id)
	}
	return ids
}

func verifyFile(t *testing.T, path string) (Report, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return Verify(f)
}

func TestRecordWritesAVerifiableChainOfValidAuditEvents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested", "dir", "audit.jsonl")
	l := openLog(t, path, Options{})
	ids := recordN(t, l, 7)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := verifyFile(t, path)
	if err != nil || !rep.OK() || rep.Records != 7 || rep.LastSeq != 7 {
		t.Fatalf("Verify = %+v, %v; want 7 intact records", rep, err)
	}
	b, _ := os.ReadFile(path)
	lines := bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
	prev := ""
	for i, line := range lines {
		rec, err := chain.Parse(line)
		if err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if rec.Seq != uint64(i+1) || rec.Prev != prev {
			t.Errorf("line %d: seq %d prev %q, want %d %q", i+1, rec.Seq, rec.Prev, i+1, prev)
		}
		prev = rec.Hash
		cr, err := r4.Parse(rec.Event)
		if err != nil {
			t.Fatalf("line %d: event is not valid R4: %v", i+1, err)
		}
		if r4.TypeName(cr) != "AuditEvent" || r4.ID(cr) != ids[i] {
			t.Errorf("line %d: %s/%s, want AuditEvent/%s", i+1, r4.TypeName(cr), r4.ID(cr), ids[i])
		}
		if !bytes.Contains(rec.Event, []byte(`"4bf92f3577b34da6a3ce929d0e0e4736"`)) {
			t.Errorf("line %d: event lacks the trace id", i+1)
		}
	}
	if seq, hash := l.Head(); seq != 7 || hash != prev {
		t.Errorf("Head = %d %s, want 7 %s", seq, hash, prev)
	}
}

func TestRestartContinuesTheChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l := openLog(t, path, Options{})
	recordN(t, l, 3)
	_, head := l.Head()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l2 := openLog(t, path, Options{})
	if seq, hash := l2.Head(); seq != 3 || hash != head {
		t.Fatalf("reopened Head = %d %s, want 3 %s", seq, hash, head)
	}
	recordN(t, l2, 2)
	if got, total, err := l2.Search(context.Background(), Query{}); err != nil || total != 5 || len(got) != 5 {
		t.Fatalf("Search after restart = %d of %d, %v; want 5 of 5", len(got), total, err)
	}
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := verifyFile(t, path)
	if err != nil || rep.Records != 5 || rep.LastSeq != 5 {
		t.Fatalf("Verify = %+v, %v; want 5 records", rep, err)
	}
}

func TestConcurrentRecordsKeepTheChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l := openLog(t, path, Options{})
	const workers, each = 8, 25
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		ids  = map[string]bool{}
		errs []error
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				id, err := l.Record(context.Background(), entryFor(OutcomeSuccess))
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				}
				ids[id] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("Record errors: %v", errs)
	}
	if len(ids) != workers*each {
		t.Errorf("%d distinct ids, want %d", len(ids), workers*each)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := verifyFile(t, path)
	if err != nil || rep.Records != workers*each {
		t.Fatalf("Verify = %+v, %v; want %d records", rep, err, workers*each)
	}
}

func TestRecordAfterCloseIsUnavailable(t *testing.T) {
	l := openLog(t, filepath.Join(t.TempDir(), "audit.jsonl"), Options{})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	_, err := l.Record(context.Background(), entryFor(OutcomeSuccess))
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrClosed) {
		t.Errorf("Record after Close = %v, want ErrUnavailable and ErrClosed", err)
	}
	if err := l.Check(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Check after Close = %v, want ErrUnavailable", err)
	}
}

func TestRecordRefusesAnUnrenderableEntry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l := openLog(t, path, Options{})
	e := entryFor(OutcomeSuccess)
	e.Patient = "Patient/has a space"
	if _, err := l.Record(context.Background(), e); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Record = %v, want ErrUnavailable", err)
	}
	if seq, _ := l.Head(); seq != 0 {
		t.Errorf("Head seq = %d after a refused record, want 0", seq)
	}
}

// faultyFile fails writes or syncs on demand; a failing write first writes
// half of what it was given, as a full disk can.
type faultyFile struct {
	*os.File
	mu            sync.Mutex
	failWrite     bool
	failSync      bool
	failTruncate  bool
	partialWrites int
}

func (f *faultyFile) Write(b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failWrite {
		f.partialWrites++
		n, _ := f.File.Write(b[:len(b)/2])
		return n, errors.New("no space left on device")
	}
	return f.File.Write(b)
}

func (f *faultyFile) Sync() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failSync {
		return errors.New("input/output error")
	}
	return f.File.Sync()
}

func (f *faultyFile) Truncate(n int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failTruncate {
		return errors.New("read-only file system")
	}
	return f.File.Truncate(n)
}

func (f *faultyFile) set(write, sync, truncate bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failWrite, f.failSync, f.failTruncate = write, sync, truncate
}

func TestWriteFailureIsUnavailableAndUndone(t *testing.T) {
	tests := []struct {
		name               string
		write, sync, trunc bool
		recovers           bool
	}{
		{name: "write fails part-way", write: true, recovers: true},
		{name: "fsync fails", sync: true, recovers: true},
		{name: "write fails and cannot be undone", write: true, trunc: true, recovers: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			l := openLog(t, path, Options{})
			ff := &faultyFile{File: l.f.(*os.File)}
			l.f = ff
			recordN(t, l, 2)
			before, _ := os.ReadFile(path)

			ff.set(tc.write, tc.sync, tc.trunc)
			_, err := l.Record(context.Background(), entryFor(OutcomeSuccess))
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Record = %v, want ErrUnavailable", err)
			}
			if seq, _ := l.Head(); seq != 2 {
				t.Errorf("Head seq = %d after a failed write, want 2", seq)
			}
			ff.set(false, false, false)

			if !tc.recovers {
				if err := l.Check(context.Background()); !errors.Is(err, ErrUnavailable) {
					t.Errorf("Check = %v, want ErrUnavailable after an undo failure", err)
				}
				if _, err := l.Record(context.Background(), entryFor(OutcomeSuccess)); !errors.Is(err, ErrUnavailable) {
					t.Errorf("Record after an undo failure = %v, want ErrUnavailable", err)
				}
				rep, _ := verifyFile(t, path)
				if rep.OK() || rep.Records != 2 || rep.Broken.Line != 3 {
					t.Errorf("Verify = %+v, want the torn record named at line 3", rep)
				}
				return
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(before, after) {
				t.Errorf("the failed write left %d bytes behind", len(after)-len(before))
			}
			if err := l.Check(context.Background()); err != nil {
				t.Errorf("Check = %v after an undone failure", err)
			}
			recordN(t, l, 1)
			rep, err := verifyFile(t, path)
			if err != nil || rep.Records != 3 {
				t.Errorf("Verify = %+v, %v; want 3 intact records", rep, err)
			}
		})
	}
}

// TestCheckReportsTheLastWrite: readiness follows the outcome of the last
// write, at once, and comes back by itself once writes work again, with no
// record written to find out (a replica out of the load balancer gets no
// requests that would write one).
func TestCheckReportsTheLastWrite(t *testing.T) {
	for _, fault := range []struct {
		name        string
		write, sync bool
	}{{"disk full", true, false}, {"fsync fails", false, true}} {
		t.Run(fault.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			l := openLog(t, path, Options{})
			ff := &faultyFile{File: l.f.(*os.File)}
			l.f = ff
			recordN(t, l, 2)
			before, _ := os.ReadFile(path)
			ctx := context.Background()

			ff.set(fault.write, fault.sync, false)
			if _, err := l.Record(ctx, entryFor(OutcomeSuccess)); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Record = %v, want ErrUnavailable", err)
			}
			for i := range 3 {
				if err := l.Check(ctx); !errors.Is(err, ErrUnavailable) {
					t.Fatalf("Check #%d = %v while writes fail, want ErrUnavailable", i+1, err)
				}
			}

			ff.set(false, false, false)
			if err := l.Check(ctx); err != nil {
				t.Fatalf("Check = %v once writes work again", err)
			}
			if seq, _ := l.Head(); seq != 2 {
				t.Errorf("Head seq = %d: the checks wrote records", seq)
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(before, after) {
				t.Errorf("the checks left %d bytes behind", len(after)-len(before))
			}
			recordN(t, l, 1)
			if rep, err := verifyFile(t, path); err != nil || rep.Records != 3 {
				t.Errorf("Verify = %+v, %v; want 3 intact records", rep, err)
			}
		})
	}
}

func TestClosedFileIsUnavailable(t *testing.T) {
	l := openLog(t, filepath.Join(t.TempDir(), "audit.jsonl"), Options{})
	recordN(t, l, 1)
	if err := l.f.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := l.Record(context.Background(), entryFor(OutcomeSuccess))
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("Record on a closed file = %v, want ErrUnavailable", err)
	}
}

func TestNewRefuses(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.jsonl")
	l := openLog(t, good, Options{})
	recordN(t, l, 3)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	content, _ := os.ReadFile(good)

	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	corrupt := bytes.Clone(content)
	corrupt[len(corrupt)/2] ^= 1
	torn := content[:len(content)-10]

	tests := []struct {
		name    string
		path    string
		repair  bool
		wantErr error
	}{
		{"no path", "", false, nil},
		{"directory cannot be made", filepath.Join(notDir, "audit.jsonl"), false, nil},
		{"corrupt chain", write("corrupt.jsonl", corrupt), false, ErrCorrupt},
		{"corrupt chain even with repair", write("corrupt2.jsonl", corrupt), true, ErrCorrupt},
		{"torn tail without repair", write("torn.jsonl", torn), false, ErrCorrupt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := New(Options{Path: tc.path, RepairTornTail: tc.repair})
			if err == nil {
				l.Close()
				t.Fatal("New succeeded")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("New = %v, want %v", err, tc.wantErr)
			}
		})
	}

	t.Run("torn tail repaired", func(t *testing.T) {
		p := write("torn-repair.jsonl", torn)
		l := openLog(t, p, Options{RepairTornTail: true})
		if seq, _ := l.Head(); seq != 2 {
			t.Errorf("Head seq = %d after repair, want 2", seq)
		}
		recordN(t, l, 1)
		l.Close()
		if rep, err := verifyFile(t, p); err != nil || rep.Records != 3 {
			t.Errorf("Verify = %+v, %v", rep, err)
		}
	})

	t.Run("file in use", func(t *testing.T) {
		p := filepath.Join(dir, "locked.jsonl")
		openLog(t, p, Options{})
		if l, err := New(Options{Path: p}); !errors.Is(err, ErrLocked) {
			if l != nil {
				l.Close()
			}
			t.Errorf("second New = %v, want ErrLocked", err)
		} else if locked := (*LockedError)(nil); !errors.As(err, &locked) || (runtime.GOOS == "linux" && locked.PID != os.Getpid()) {
			// The lock is this process's own, through another open file.
			t.Errorf("second New names pid %d as the holder, want %d", locked.PID, os.Getpid())
		}
	})
}

func ExampleVerify() {
	dir, _ := os.MkdirTemp("", "audit")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "audit.jsonl")
	l, _ := New(Options{Path: path, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	for i := 0; i < 3; i++ {
		_, _ = l.Record(context.Background(), Entry{Interaction: "read", ResourceType: "Patient", Outcome: OutcomeSuccess})
	}
	_ = l.Close()

	b, _ := os.ReadFile(path)
	lines := strings.SplitAfter(string(b), "\n")
	tampered := lines[0] + strings.Replace(lines[1], `"outcome":"0"`, `"outcome":"4"`, 1) + lines[2]
	_, err := Verify(strings.NewReader(tampered))
	fmt.Println(err)
	// Output: audit: hash chain broken at line 2 (seq 2): hash does not match the record's content
}
