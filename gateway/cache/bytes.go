package cache

import (
	"crypto/sha256"
	"fmt"
	"math"
	"time"

	"github.com/maypok86/otter/v2"
)

// BytesOverhead is what an entry of a Bytes cache is weighed at beyond
// its bytes: its key and the cache's bookkeeping, roughly.
const BytesOverhead = 128

// Bytes is a bounded in-process cache of rendered bytes (the FHIR JSON of
// a released resource, a rendered document) under the SHA-256 of what
// they were rendered from. It is bounded by the bytes it holds, each entry
// weighed at its length plus BytesOverhead, and an entry lives at most the
// ttl it was made with after it was set. The bytes are shared: callers
// only copy them out. A nil *Bytes keeps nothing.
type Bytes struct {
	c *otter.Cache[[sha256.Size]byte, []byte]
}

// NewBytes returns a cache of at most maxBytes (which must be positive)
// whose entries live ttl after they were set.
func NewBytes(maxBytes int64, ttl time.Duration) (*Bytes, error) {
	c, err := otter.New(&otter.Options[[sha256.Size]byte, []byte]{
		MaximumWeight: uint64(maxBytes),
		Weigher: func(_ [sha256.Size]byte, b []byte) uint32 {
			return uint32(min(len(b)+BytesOverhead, math.MaxInt32))
		},
		ExpiryCalculator: otter.ExpiryWriting[[sha256.Size]byte, []byte](ttl),
	})
	if err != nil {
		return nil, fmt.Errorf("bytes cache of %d bytes: %w", maxBytes, err)
	}
	return &Bytes{c: c}, nil
}

// Get returns the bytes kept under key.
func (b *Bytes) Get(key [sha256.Size]byte) ([]byte, bool) {
	if b == nil {
		return nil, false
	}
	return b.c.GetIfPresent(key)
}

// Set keeps v under key.
func (b *Bytes) Set(key [sha256.Size]byte, v []byte) {
	if b != nil {
		b.c.Set(key, v)
	}
}

// Len is how many entries are kept once pending evictions are done.
func (b *Bytes) Len() int {
	if b == nil {
		return 0
	}
	b.c.CleanUp()
	return b.c.EstimatedSize()
}
