package cache

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/maypok86/otter/v2"
)

// DefaultMaxBytes bounds a MemoryStore whose MaxBytes is zero.
const DefaultMaxBytes = 256 << 20

// entryOverhead approximates what one entry costs beyond its key and value
// (node, map slot, slice headers), so many small entries cannot blow past
// MaxBytes.
const entryOverhead = 96

// MemoryOptions configure a MemoryStore.
type MemoryOptions struct {
	// MaxBytes bounds the store: names, values, tags and a per-entry
	// overhead are counted, and the least valuable entries are evicted
	// (W-TinyLFU). Zero means DefaultMaxBytes.
	MaxBytes int64
	// Now is the clock that entry TTLs are measured with. Nil means the
	// real clock; tests pass a fake one to expire entries without
	// sleeping.
	Now func() time.Time
}

// MemoryStore is the in-process Store of the embedded default, on
// github.com/maypok86/otter/v2 (see README.md for why otter). It never
// fails, so a Cache over it is never degraded.
type MemoryStore struct {
	c *otter.Cache[string, *memEntry]
}

var _ Store = (*MemoryStore)(nil)

type memEntry struct {
	value []byte
	tags  []string
	ttl   time.Duration
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore(opts MemoryOptions) (*MemoryStore, error) {
	max := opts.MaxBytes
	if max == 0 {
		max = DefaultMaxBytes
	}
	if max < 0 {
		return nil, fmt.Errorf("memory cache: max bytes cannot be negative")
	}
	o := &otter.Options[string, *memEntry]{
		MaximumWeight: uint64(max),
		Weigher: func(name string, e *memEntry) uint32 {
			w := entryOverhead + len(name) + len(e.value)
			for _, t := range e.tags {
				w += len(t)
			}
			return uint32(min(w, math.MaxUint32))
		},
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, *memEntry]) time.Duration {
			return e.Value.ttl
		}),
	}
	if opts.Now != nil {
		o.Clock = fakeableClock{now: opts.Now}
	}
	c, err := otter.New(o)
	if err != nil {
		return nil, fmt.Errorf("memory cache: %w", err)
	}
	return &MemoryStore{c: c}, nil
}

// fakeableClock adapts a Now function to otter. It has no ticks: with a
// fake clock, expired entries are dropped when read or evicted rather than
// by a background sweep that would run on real time.
type fakeableClock struct{ now func() time.Time }

func (f fakeableClock) NowNano() int64                    { return f.now().UnixNano() }
func (fakeableClock) Tick(time.Duration) <-chan time.Time { return nil }

// Get implements Store.
func (m *MemoryStore) Get(_ context.Context, name string) ([]byte, error) {
	if e, ok := m.c.GetIfPresent(name); ok {
		return e.value, nil
	}
	return nil, nil
}

// GetMany implements Store.
func (m *MemoryStore) GetMany(ctx context.Context, names []string) ([][]byte, error) {
	out := make([][]byte, len(names))
	for i, n := range names {
		out[i], _ = m.Get(ctx, n)
	}
	return out, nil
}

// Set implements Store. The tags live in the entry itself: DeleteTag scans,
// which is cheap at in-process sizes and leaves no index to keep in step
// with evictions.
func (m *MemoryStore) Set(_ context.Context, name string, value []byte, ttl time.Duration, tags []string) error {
	if ttl <= 0 {
		return nil
	}
	m.c.Set(name, &memEntry{value: value, tags: tags, ttl: ttl})
	return nil
}

// Delete implements Store.
func (m *MemoryStore) Delete(_ context.Context, names ...string) error {
	for _, n := range names {
		m.c.Invalidate(n)
	}
	return nil
}

// DeletePrefixes implements Store.
func (m *MemoryStore) DeletePrefixes(_ context.Context, prefixes []string) (int, error) {
	n := 0
	for name := range m.c.Keys() {
		for _, p := range prefixes {
			if strings.HasPrefix(name, p) {
				if _, ok := m.c.Invalidate(name); ok {
					n++
				}
				break
			}
		}
	}
	return n, nil
}

// DeleteTag implements Store.
func (m *MemoryStore) DeleteTag(_ context.Context, tag string) (int, error) {
	n := 0
	for name, e := range m.c.All() {
		if slices.Contains(e.tags, tag) {
			if _, ok := m.c.Invalidate(name); ok {
				n++
			}
		}
	}
	return n, nil
}

// Close implements Store; it stops otter's maintenance goroutines.
func (m *MemoryStore) Close() error {
	m.c.StopAllGoroutines()
	return nil
}
