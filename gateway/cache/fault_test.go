package cache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/migrant-health/mhg/gateway/telemetry"
)

// faultCache is a Cache over its own Redis at addr with a quick breaker.
func faultCache(t *testing.T, addr string, timeout time.Duration) *Cache {
	t.Helper()
	s, err := NewRedisStore(RedisOptions{URL: "redis://" + addr + "/0", Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	c := newCache(t, s, func(o *Options) {
		o.TTL = map[Kind]time.Duration{KindResource: time.Minute}
		o.Breaker = BreakerOptions{Failures: 3, OpenFor: 200 * time.Millisecond}
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestRedisKilledAndRestarted: with Redis gone every Fetch still answers
// from the loader without error and the cache says it is degraded; with
// Redis back on the same port, values are cached and hit again.
func TestRedisKilledAndRestarted(t *testing.T) {
	srv := ownRedis(t, false)
	c := faultCache(t, srv.Addr(), 50*time.Millisecond)
	ctx := context.Background()
	r := newRecorder("from source")
	k := resKey("de", "a")

	mustFetch(t, c, k, false, r, "from source")
	mustFetch(t, c, k, false, r, "from source")
	wantCalls(t, r, 1)
	if c.Degraded() {
		t.Fatal("degraded while Redis is up")
	}

	srv.Kill()
	const n = 50
	start := time.Now()
	for i := range n {
		v, err := c.Fetch(ctx, k, false, r.load)
		if err != nil || string(v) != "from source" {
			t.Fatalf("Fetch %d with Redis down = %q, %v; want the source's value", i, v, err)
		}
	}
	elapsed := time.Since(start)
	wantCalls(t, r, 1+n)
	if !c.Degraded() {
		t.Fatal("not degraded with Redis down")
	}
	// Failed dials on loopback are quick, but the point is that the
	// breaker leaves nothing to wait for: far below n timeouts.
	if elapsed > n*50*time.Millisecond/2 {
		t.Errorf("%d Fetches with Redis down took %v", n, elapsed)
	}
	if got, err := c.GetMany(ctx, []Key{k}); err != nil || got[0] != nil {
		t.Fatalf("GetMany with Redis down = %q, %v; want a miss and no error", got, err)
	}

	if err := c.Check(ctx); err == nil {
		t.Fatal("Check passed with Redis down")
	}

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	// Only readiness probes, no requests: the breaker must still close.
	deadline := time.Now().Add(10 * time.Second)
	for c.Check(ctx) != nil || c.Degraded() {
		if time.Now().After(deadline) {
			t.Fatal("still degraded 10s after Redis came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The restarted Redis is empty: one load fills it, then hits resume.
	mustFetch(t, c, k, false, r, "from source")
	before := r.calls.Load()
	for range 5 {
		mustFetch(t, c, k, false, r, "from source")
	}
	wantCalls(t, r, before)
}

// TestRedisUnresponsive: a Redis that accepts connections and never
// answers costs each request at most the command timeout, then nothing
// once the breaker opens.
func TestRedisUnresponsive(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
	})
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn) // held open, never answered
			mu.Unlock()
		}
	}()

	// Long enough to tell a timed-out call from a skipped one on a busy
	// machine.
	const timeout = 200 * time.Millisecond
	c := faultCache(t, l.Addr().String(), timeout)
	r := newRecorder("from source")
	cases := []struct {
		name string
		max  time.Duration
	}{
		// Each of the first calls waits for the GET and the SET to time
		// out (plus slack for a loaded machine).
		{"before the breaker opens", 4*timeout + 500*time.Millisecond},
		{"", 4*timeout + 500*time.Millisecond},
		{"", 4*timeout + 500*time.Millisecond},
		{"breaker open", 50 * time.Millisecond},
		{"breaker open", 50 * time.Millisecond},
	}
	for i, tc := range cases {
		start := time.Now()
		v, err := c.Fetch(context.Background(), resKey("de", "a"), false, r.load)
		took := time.Since(start)
		if err != nil || string(v) != "from source" {
			t.Fatalf("Fetch %d = %q, %v", i, v, err)
		}
		if took > tc.max {
			t.Errorf("Fetch %d (%s) took %v, want at most %v", i, tc.name, took, tc.max)
		}
	}
	if !c.Degraded() {
		t.Fatal("not degraded with an unresponsive Redis")
	}
}

// TestCallerCancelDoesNotTripBreaker: callers that give up are not the
// store's failures.
func TestCallerCancelDoesNotTripBreaker(t *testing.T) {
	// Like go-redis, the store fails calls whose context is done.
	s := &failingStore{Store: mustMemory(t), ctxAware: true}
	c := newCache(t, s, func(o *Options) { o.Breaker = BreakerOptions{Failures: 1, OpenFor: time.Hour} })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// The load runs detached and may finish first; either answer is right.
	if v, err := c.Fetch(ctx, resKey("de", "a"), false, newRecorder("v").load); !errors.Is(err, context.Canceled) && string(v) != "v" {
		t.Fatalf("Fetch with a cancelled context = %q, %v", v, err)
	}
	if s.calls.Load() == 0 {
		t.Fatal("the store was never asked: the test proves nothing")
	}
	if c.Degraded() {
		t.Fatal("a cancelled caller opened the breaker")
	}
	r := newRecorder("v")
	mustFetch(t, c, resKey("de", "b"), false, r, "v")
	mustFetch(t, c, resKey("de", "b"), false, r, "v")
	wantCalls(t, r, 1)
}

func mustMemory(t *testing.T) *MemoryStore {
	t.Helper()
	s, err := NewMemoryStore(MemoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// failingStore fails every Get and Set with err while err is set, and
// with the context's error when ctxAware and the context is done.
type failingStore struct {
	Store
	ctxAware bool
	calls    atomic.Int64
	mu       sync.Mutex
	err      error
}

func (f *failingStore) fail(err error) { f.mu.Lock(); f.err = err; f.mu.Unlock() }

func (f *failingStore) failure(ctx context.Context) error {
	f.calls.Add(1)
	if f.ctxAware && ctx.Err() != nil {
		return ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func (f *failingStore) Get(ctx context.Context, name string) ([]byte, error) {
	if err := f.failure(ctx); err != nil {
		return nil, err
	}
	return f.Store.Get(ctx, name)
}

func (f *failingStore) Set(ctx context.Context, name string, v []byte, ttl time.Duration, tags []string) error {
	if err := f.failure(ctx); err != nil {
		return err
	}
	return f.Store.Set(ctx, name, v, ttl, tags)
}

// TestRedisClientLogsAreStructured: what the Redis client itself says
// (dial failures, pool events) goes to the gateway's JSON log, not to
// stderr as plain text lines.
func TestRedisClientLogsAreStructured(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens there now
	var buf syncBuffer
	logger := slog.New(telemetry.NewLogHandler(slog.NewJSONHandler(&buf, nil)))
	s, err := NewRedisStore(RedisOptions{URL: "redis://" + addr + "/0", Timeout: 50 * time.Millisecond, Logger: logger, NoTelemetry: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.Get(context.Background(), "k"); err == nil {
		t.Fatal("Get against no Redis succeeded")
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(buf.String(), "failed to dial") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	out := buf.String()
	if !strings.Contains(out, "failed to dial") {
		t.Fatalf("the Redis client's dial failure is not in the JSON log: %q", out)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not a JSON log line: %q", line)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
