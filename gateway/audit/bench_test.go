package audit

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/migrant-health/mhg/gateway/audit/chain"
)

// The benchmarks compare a durable audit record with plain appends of a
// line of the same size: "append" is the baseline (no rendering, no chain,
// no fsync), "append+fsync" the floor any durable record pays, and
// "record" and "record-parallel" what Log.Record costs, the latter with
// concurrent callers sharing writes and fsyncs.

func benchLog(b *testing.B) *Log {
	b.Helper()
	l, err := New(Options{
		Path:   filepath.Join(b.TempDir(), "audit.jsonl"),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l
}

func benchLine(b *testing.B) []byte {
	b.Helper()
	ev, err := Render(entryFor(OutcomeSuccess), "6e2b1c4a-9d7f-4b1e-8c2a-1f0e3d5c7b9a", testTime, Observer{})
	if err != nil {
		b.Fatal(err)
	}
	line, _ := chain.Seal(nil, 1, testTime.Format(chain.TimeLayout), "", ev)
	return line
}

func BenchmarkAudit(b *testing.B) {
	b.Run("append", func(b *testing.B) {
		line := benchLine(b)
		f, err := os.OpenFile(filepath.Join(b.TempDir(), "plain.jsonl"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		b.ReportAllocs()
		b.SetBytes(int64(len(line)))
		for b.Loop() {
			if _, err := f.Write(line); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("append+fsync", func(b *testing.B) {
		line := benchLine(b)
		f, err := os.OpenFile(filepath.Join(b.TempDir(), "plain.jsonl"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		b.ReportAllocs()
		b.SetBytes(int64(len(line)))
		for b.Loop() {
			if _, err := f.Write(line); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("render", func(b *testing.B) {
		e := entryFor(OutcomeSuccess)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Render(e, "6e2b1c4a-9d7f-4b1e-8c2a-1f0e3d5c7b9a", testTime, Observer{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("record", func(b *testing.B) {
		l := benchLog(b)
		e := entryFor(OutcomeSuccess)
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := l.Record(ctx, e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("record-parallel", func(b *testing.B) {
		l := benchLog(b)
		e := entryFor(OutcomeSuccess)
		ctx := context.Background()
		b.ReportAllocs()
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := l.Record(ctx, e); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkVerify measures checking a log, per record.
func BenchmarkVerify(b *testing.B) {
	path := filepath.Join(b.TempDir(), "audit.jsonl")
	l, err := New(Options{Path: path, Now: func() time.Time { return testTime }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if _, err := l.Record(context.Background(), entryFor(OutcomeSuccess)); err != nil {
			b.Fatal(err)
		}
	}
	l.Close()
	data, _ := os.ReadFile(path)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		f, _ := os.Open(path)
		if _, err := Verify(f); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}
