package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// harness gives the suite a fresh Store and a way to let its time pass.
type harness struct {
	name string
	// open returns a Store for one test (closed at cleanup) and advance,
	// which moves the store's clock forward by d: a fake clock for the
	// memory store, real sleep for Redis.
	open func(t *testing.T) (s Store, advance func(d time.Duration))
	// dump returns every name and stored payload (tag indexes: their
	// members), for the privacy check.
	dump func(t *testing.T, s Store) map[string][]byte
}

// ttl is short enough for Redis to expire within a test and long enough
// for a slow CI machine to read a value back before it does.
const ttl = 300 * time.Millisecond

var nsCounter atomic.Int64

// newCache builds a Cache over s in a namespace no other test uses, so
// tests sharing one Redis do not see each other.
func newCache(t *testing.T, s Store, mod func(*Options)) *Cache {
	t.Helper()
	o := Options{
		Store:       s,
		TTL:         map[Kind]time.Duration{KindResource: ttl, KindSearch: ttl, KindResolve: ttl},
		NegativeTTL: ttl,
		Namespace:   fmt.Sprintf("t%d", nsCounter.Add(1)),
		Keys:        testKeys(t, "k1"),
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if mod != nil {
		mod(&o)
	}
	c, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func testKeys(t testing.TB, id string) Keys {
	t.Helper()
	k, err := GenerateKeys(id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// recorder is a Loader that counts its calls, like a recording source.
type recorder struct {
	calls atomic.Int64
	delay time.Duration
	gate  func() // when set, runs before the load answers
	mu    sync.Mutex
	value []byte
	err   error
}

func newRecorder(v string) *recorder { return &recorder{value: []byte(v)} }

func (r *recorder) set(v string, err error) {
	r.mu.Lock()
	r.value, r.err = []byte(v), err
	r.mu.Unlock()
}

func (r *recorder) load(ctx context.Context) ([]byte, error) {
	r.calls.Add(1)
	if r.delay > 0 {
		select {
		case <-time.After(r.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if r.gate != nil {
		r.gate()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return nil, r.err
	}
	return bytes.Clone(r.value), nil
}

func resKey(source, id string) Key {
	return Key{Kind: KindResource, Source: source, Version: "1", Parts: []string{"Patient", id}}
}

// mustFetch fetches and fails the test on an error or an unexpected value.
func mustFetch(t *testing.T, c *Cache, k Key, refresh bool, r *recorder, want string) {
	t.Helper()
	got, err := c.Fetch(context.Background(), k, refresh, r.load)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if string(got) != want {
		t.Fatalf("Fetch = %q, want %q", got, want)
	}
}

func wantCalls(t *testing.T, r *recorder, want int64) {
	t.Helper()
	if got := r.calls.Load(); got != want {
		t.Fatalf("loads = %d, want %d", got, want)
	}
}

var errBoom = errors.New("source down")

// countingStore counts Gets.
type countingStore struct {
	Store
	gets atomic.Int64
}

func (c *countingStore) Get(ctx context.Context, name string) ([]byte, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, name)
}

// runSuite is the one behaviour suite every Store must pass.
func runSuite(t *testing.T, h harness) {
	t.Run("HitAfterMiss", func(t *testing.T) {
		s, _ := h.open(t)
		c := newCache(t, s, nil)
		r := newRecorder("patient-a")
		mustFetch(t, c, resKey("de", "a"), false, r, "patient-a")
		mustFetch(t, c, resKey("de", "a"), false, r, "patient-a")
		wantCalls(t, r, 1)
	})

	t.Run("TTLExpiry", func(t *testing.T) {
		s, advance := h.open(t)
		c := newCache(t, s, func(o *Options) { o.TTL[KindSearch] = 3 * ttl })
		res, srch := newRecorder("r"), newRecorder("s")
		sk := Key{Kind: KindSearch, Source: "de", Version: "1", Parts: []string{"Patient", "family=x"}}
		mustFetch(t, c, resKey("de", "a"), false, res, "r")
		mustFetch(t, c, sk, false, srch, "s")
		advance(ttl / 3)
		mustFetch(t, c, resKey("de", "a"), false, res, "r")
		wantCalls(t, res, 1)
		advance(ttl)
		mustFetch(t, c, resKey("de", "a"), false, res, "r")
		wantCalls(t, res, 2)
		// Each kind has its own TTL: the search set has not expired yet.
		mustFetch(t, c, sk, false, srch, "s")
		wantCalls(t, srch, 1)
	})

	t.Run("Singleflight", func(t *testing.T) {
		cases := []struct {
			name    string
			err     error
			wantErr bool
		}{
			{"value shared", nil, false},
			{"error shared", errBoom, true},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s, _ := h.open(t)
				const n = 100
				// The load lasts until every caller has read the store and
				// so is about to join the flight: on a busy machine a fixed
				// delay can end before the last caller gets there, and an
				// error (never cached) would then be loaded again.
				cs := &countingStore{Store: s}
				c := newCache(t, cs, nil)
				// Warm the client (cluster slot map, first connection) so
				// the burst below measures singleflight, not dialling.
				mustFetch(t, c, resKey("warm", "up"), false, newRecorder("w"), "w")
				cs.gets.Store(0)
				r := newRecorder("shared")
				r.set("shared", tc.err)
				r.gate = func() {
					deadline := time.Now().Add(10 * time.Second)
					// n callers' reads plus the flight's own second look.
					for cs.gets.Load() < n+1 && time.Now().Before(deadline) {
						time.Sleep(time.Millisecond)
					}
					// Between a caller's read and its joining the flight
					// there is no event to wait for; under -race on a loaded
					// machine 100ms was seen too short (a late caller then
					// starts a flight of its own after the error).
					time.Sleep(time.Second)
				}
				var wg sync.WaitGroup
				start := make(chan struct{})
				errs := make(chan error, n)
				for range n {
					wg.Go(func() {
						<-start
						v, err := c.Fetch(context.Background(), resKey("de", "a"), false, r.load)
						switch {
						case tc.wantErr && !errors.Is(err, errBoom):
							errs <- fmt.Errorf("err = %v, want the loader's", err)
						case !tc.wantErr && (err != nil || string(v) != "shared"):
							errs <- fmt.Errorf("got %q, %v", v, err)
						}
					})
				}
				close(start)
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Fatal(err)
				}
				wantCalls(t, r, 1)
			})
		}
	})

	t.Run("VersionBumpMisses", func(t *testing.T) {
		s, _ := h.open(t)
		c := newCache(t, s, nil)
		k1 := resKey("de", "a")
		k2 := k1
		k2.Version = "2"
		r1, r2 := newRecorder("old shape"), newRecorder("new shape")
		mustFetch(t, c, k1, false, r1, "old shape")
		mustFetch(t, c, k2, false, r2, "new shape")
		mustFetch(t, c, k2, false, r2, "new shape")
		wantCalls(t, r2, 1)
	})

	t.Run("RefreshReloads", func(t *testing.T) {
		s, _ := h.open(t)
		c := newCache(t, s, nil)
		r := newRecorder("v1")
		mustFetch(t, c, resKey("de", "a"), false, r, "v1")
		r.set("v2", nil)
		mustFetch(t, c, resKey("de", "a"), false, r, "v1")
		mustFetch(t, c, resKey("de", "a"), true, r, "v2")
		wantCalls(t, r, 2)
		// The refreshed value is what later reads get.
		mustFetch(t, c, resKey("de", "a"), false, r, "v2")
		wantCalls(t, r, 2)
	})

	t.Run("PurgeSource", func(t *testing.T) {
		s, _ := h.open(t)
		c := newCache(t, s, nil)
		keys := map[string]Key{
			"de res":   resKey("de", "a"),
			"de srch":  {Kind: KindSearch, Source: "de", Version: "1", Parts: []string{"q"}},
			"de rslv":  {Kind: KindResolve, Source: "de", Parts: []string{"id"}},
			"de-a res": resKey("de-a", "a"), // a source whose id extends "de"
			"nl res":   resKey("nl", "a"),
		}
		recs := map[string]*recorder{}
		for name, k := range keys {
			recs[name] = newRecorder(name)
			mustFetch(t, c, k, false, recs[name], name)
		}
		n, err := c.PurgeSource(context.Background(), "de")
		if err != nil || n != 3 {
			t.Fatalf("PurgeSource = %d, %v; want 3, nil", n, err)
		}
		for name, k := range keys {
			mustFetch(t, c, k, false, recs[name], name)
			want := int64(1)
			if name[:3] == "de " {
				want = 2
			}
			if got := recs[name].calls.Load(); got != want {
				t.Errorf("%s: loads = %d, want %d", name, got, want)
			}
		}
	})

	t.Run("PurgeTag", func(t *testing.T) {
		s, _ := h.open(t)
		c := newCache(t, s, nil)
		tagged := func(k Key, tags ...string) Key { k.Tags = tags; return k }
		keys := map[string]Key{
			"p1 de res":  tagged(resKey("de", "a"), "patient-1"),
			"p1 nl rslv": tagged(Key{Kind: KindResolve, Source: "nl", Parts: []string{"bsn"}}, "patient-1", "org-9"),
			"p2 de res":  tagged(resKey("de", "b"), "patient-2"),
			"untagged":   resKey("de", "c"),
		}
		recs := map[string]*recorder{}
		for name, k := range keys {
			recs[name] = newRecorder(name)
			mustFetch(t, c, k, false, recs[name], name)
		}
		n, err := c.PurgeTag(context.Background(), "patient-1")
		if err != nil || n != 2 {
			t.Fatalf("PurgeTag = %d, %v; want 2, nil", n, err)
		}
		for name, k := range keys {
			mustFetch(t, c, k, false, recs[name], name)
			want := int64(1)
			if name[:2] == "p1" {
				want = 2
			}
			if got := recs[name].calls.Load(); got != want {
				t.Errorf("%s: loads = %d, want %d", name, got, want)
			}
		}
		if n, err := c.PurgeTag(context.Background(), "no-such-tag"); err != nil || n != 0 {
			t.Fatalf("PurgeTag(unknown) = %d, %v", n, err)
		}
	})

	t.Run("NegativeCaching", func(t *testing.T) {
		s, advance := h.open(t)
		c := newCache(t, s, nil)
		r := newRecorder("")
		r.set("", fmt.Errorf("source de: Patient: %w", ErrAbsent))
		k := Key{Kind: KindResolve, Source: "de", Parts: []string{"urn:oid:1.2", "X39499066X"}}
		for i := range 3 {
			if _, err := c.Fetch(context.Background(), k, false, r.load); !errors.Is(err, ErrAbsent) {
				t.Fatalf("Fetch %d: err = %v, want ErrAbsent", i, err)
			}
		}
		wantCalls(t, r, 1)
		advance(ttl + ttl/2)
		r.set("found", nil)
		mustFetch(t, c, k, false, r, "found")
		wantCalls(t, r, 2)

		// Other errors are not kept.
		r2 := newRecorder("")
		r2.set("", errBoom)
		for range 2 {
			if _, err := c.Fetch(context.Background(), resKey("de", "z"), false, r2.load); !errors.Is(err, errBoom) {
				t.Fatalf("err = %v, want errBoom", err)
			}
		}
		wantCalls(t, r2, 2)
	})

	t.Run("UnreadableValueIsMissAndDeleted", func(t *testing.T) {
		cases := []struct {
			name    string
			corrupt func(t *testing.T, c *Cache, name string, sealed []byte) []byte
		}{
			{"garbage", func(*testing.T, *Cache, string, []byte) []byte { return []byte("not a sealed value") }},
			{"truncated", func(_ *testing.T, _ *Cache, _ string, v []byte) []byte { return v[:len(v)/2] }},
			{"flipped ciphertext bit", func(_ *testing.T, _ *Cache, _ string, v []byte) []byte {
				v = bytes.Clone(v)
				v[len(v)-20] ^= 1
				return v
			}},
			{"unknown key id", func(t *testing.T, c *Cache, name string, _ []byte) []byte {
				other, err := newSealer("x", testKeys(t, "k-retired"))
				if err != nil {
					t.Fatal(err)
				}
				return other.seal(name, flagValue, []byte("from a retired key"))
			}},
			{"value of another key", func(_ *testing.T, c *Cache, _ string, _ []byte) []byte {
				other, _ := c.seal.name(resKey("de", "other"))
				return c.seal.seal(other, flagValue, []byte("belongs elsewhere"))
			}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s, _ := h.open(t)
				c := newCache(t, s, nil)
				k := resKey("de", "a")
				mustFetch(t, c, k, false, newRecorder("good"), "good")
				name, _ := c.seal.name(k)
				sealed, err := s.Get(context.Background(), name)
				if err != nil || sealed == nil {
					t.Fatalf("stored value: %v, %v", sealed, err)
				}
				if err := s.Set(context.Background(), name, tc.corrupt(t, c, name, sealed), time.Minute, nil); err != nil {
					t.Fatal(err)
				}
				// A failing loader proves the read was a miss and that Fetch
				// reports nothing but the loader's error.
				failing := newRecorder("")
				failing.set("", errBoom)
				if _, err := c.Fetch(context.Background(), k, false, failing.load); !errors.Is(err, errBoom) {
					t.Fatalf("Fetch err = %v, want the loader's errBoom", err)
				}
				if v, err := s.Get(context.Background(), name); err != nil || v != nil {
					t.Fatalf("unreadable value not deleted: %q, %v", v, err)
				}
				mustFetch(t, c, k, false, newRecorder("reloaded"), "reloaded")
			})
		}
	})

	t.Run("KeyRotation", func(t *testing.T) {
		s, _ := h.open(t)
		old := testKeys(t, "k1")
		rotated, err := old.Rotate("k2")
		if err != nil {
			t.Fatal(err)
		}
		retired := Keys{HMAC: old.HMAC, Values: rotated.Values[:1]}
		ns := fmt.Sprintf("rot%d", nsCounter.Add(1))
		withKeys := func(k Keys) func(*Options) {
			return func(o *Options) { o.Keys, o.Namespace = k, ns }
		}
		c1 := newCache(t, s, withKeys(old))
		c2 := newCache(t, s, withKeys(rotated))
		c3 := newCache(t, s, withKeys(retired))

		a, b := resKey("de", "a"), resKey("de", "b")
		mustFetch(t, c1, a, false, newRecorder("sealed with k1"), "sealed with k1")
		// The rotated replica still opens the old key's values...
		r := newRecorder("unused")
		mustFetch(t, c2, a, false, r, "sealed with k1")
		wantCalls(t, r, 0)
		// ...and seals new ones with the new key.
		mustFetch(t, c2, b, false, newRecorder("sealed with k2"), "sealed with k2")
		nameB, _ := c2.seal.name(b)
		raw, _ := s.Get(context.Background(), nameB)
		if id, _ := keyID(raw); id != "k2" {
			t.Fatalf("new value sealed with %q, want k2", id)
		}
		// Once k1 is retired, its values are misses and get deleted.
		r3 := newRecorder("reloaded")
		mustFetch(t, c3, a, false, r3, "reloaded")
		mustFetch(t, c3, b, false, r3, "sealed with k2")
		wantCalls(t, r3, 1)
	})

	t.Run("GetManyAndSet", func(t *testing.T) {
		s, _ := h.open(t)
		c := newCache(t, s, nil)
		ctx := context.Background()
		keys := []Key{resKey("de", "1"), resKey("de", "2"), resKey("de", "3"), resKey("de", "4"), resKey("de", "5")}
		if err := c.Set(ctx, keys[0], []byte("one")); err != nil {
			t.Fatal(err)
		}
		if err := c.Set(ctx, keys[2], []byte("three")); err != nil {
			t.Fatal(err)
		}
		absent := newRecorder("")
		absent.set("", ErrAbsent)
		_, _ = c.Fetch(ctx, keys[3], false, absent.load)
		mustFetch(t, c, keys[4], false, newRecorder("five"), "five")
		name4, _ := c.seal.name(keys[4])
		_ = s.Set(ctx, name4, []byte("garbage"), time.Minute, nil)

		got, err := c.GetMany(ctx, keys)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"one", "", "three", "", ""}
		for i := range want {
			if string(got[i]) != want[i] || (want[i] == "") != (got[i] == nil) {
				t.Errorf("GetMany[%d] = %q, want %q", i, got[i], want[i])
			}
		}
		if v, _ := s.Get(ctx, name4); v != nil {
			t.Error("GetMany left an unreadable value in place")
		}
		if err := c.Invalidate(ctx, keys[0]); err != nil {
			t.Fatal(err)
		}
		if got, _ := c.GetMany(ctx, keys[:1]); got[0] != nil {
			t.Errorf("after Invalidate: %q", got[0])
		}
	})

	t.Run("NoPHIInStore", func(t *testing.T) {
		s, _ := h.open(t)
		c := newCache(t, s, nil)
		phi := runRealistic(t, c)
		dump := h.dump(t, s)
		if len(dump) == 0 {
			t.Fatal("store is empty after the run: nothing was checked")
		}
		for name, v := range dump {
			for _, p := range phi {
				if bytes.Contains([]byte(name), []byte(p)) {
					t.Errorf("key name holds %q in clear", p)
				}
				if bytes.Contains(v, []byte(p)) {
					t.Errorf("stored value holds %q in clear", p)
				}
			}
		}
	})
}

// keyID returns the id in a sealed value's header, read back by the tests.
func keyID(v []byte) (string, bool) {
	if len(v) < 2 || len(v) < 2+int(v[1]) {
		return "", false
	}
	return string(v[2 : 2+int(v[1])]), true
}
