package audit

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/migrant-health/mhg/gateway/audit/chain"
	"github.com/migrant-health/mhg/gateway/internal/redistest"
)

// testRedis returns a client for REDIS_URL, or for a redis-server started
// for this test. It fails (not skips) when neither is available: the
// stream sink is part of what this package promises.
func testRedis(t *testing.T) redis.UniversalClient {
	t.Helper()
	opt, err := redis.ParseURL(redistest.URL(t))
	if err != nil {
		t.Fatalf("REDIS_URL: %v", err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestStreamSinkGetsEveryRecord(t *testing.T) {
	c := testRedis(t)
	stream := "mhg:audit:test:" + strconv.FormatInt(time.Now().UnixNano(), 36)
	t.Cleanup(func() { c.Del(context.Background(), stream) })
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l := openLog(t, path, Options{Redis: c, RedisStream: stream, Observer: Observer{Instance: "mhg-1"}})
	recordN(t, l, 4)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	msgs, err := c.XRange(context.Background(), stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	lines := bytes.SplitAfter(b, []byte("\n"))[:4]
	if len(msgs) != len(lines) {
		t.Fatalf("stream has %d entries, file %d records", len(msgs), len(lines))
	}
	for i, m := range msgs {
		rec, err := chain.Parse(bytes.TrimSuffix(lines[i], []byte("\n")))
		if err != nil {
			t.Fatal(err)
		}
		v := m.Values
		if v["seq"] != strconv.FormatUint(rec.Seq, 10) || v["hash"] != rec.Hash || v["prev"] != rec.Prev ||
			v["time"] != rec.Time || v["event"] != string(rec.Event) || v["instance"] != "mhg-1" {
			t.Errorf("stream entry %d does not match record %d: %v", i, rec.Seq, v)
		}
		// The stream copy is enough to rebuild and check the record.
		canon := chain.AppendCanonical(nil, rec.Seq, v["time"].(string), v["prev"].(string), []byte(v["event"].(string)))
		if chain.Hash(canon) != v["hash"] {
			t.Errorf("stream entry %d: hash does not match its content", i)
		}
	}
}

func TestStreamFailure(t *testing.T) {
	// A port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	down := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { down.Close() })

	t.Run("file is the record of truth", func(t *testing.T) {
		l := openLog(t, filepath.Join(t.TempDir(), "audit.jsonl"), Options{Redis: down, RedisStream: "s"})
		if _, err := l.Record(context.Background(), entryFor(OutcomeSuccess)); err != nil {
			t.Fatalf("Record = %v, want success with the stream down", err)
		}
		if seq, _ := l.Head(); seq != 1 {
			t.Errorf("Head seq = %d, want 1", seq)
		}
	})
	t.Run("stream required", func(t *testing.T) {
		l := openLog(t, filepath.Join(t.TempDir(), "audit.jsonl"), Options{Redis: down, RedisStream: "s", RequireStream: true})
		_, err := l.Record(context.Background(), entryFor(OutcomeSuccess))
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("Record = %v, want ErrUnavailable", err)
		}
	})
}
