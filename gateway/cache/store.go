package cache

import (
	"context"
	"time"
)

// Store is where a Cache keeps its entries. The Cache hands it opaque
// names (keyed hashes) and sealed values only, so a Store never sees an
// identifier or a clear value. Implementations: MemoryStore (in-process)
// and RedisStore.
//
// A Store reports its own failures as errors; the Cache turns them into
// misses, counts them and trips its breaker. A miss is not an error.
type Store interface {
	// Get returns the value stored under name, or nil when there is none.
	Get(ctx context.Context, name string) ([]byte, error)
	// GetMany returns one slot per name, nil for a miss.
	GetMany(ctx context.Context, names []string) ([][]byte, error)
	// Set stores value under name for ttl (> 0) and adds name to the index
	// of each tag, which lives at least as long as its newest member.
	Set(ctx context.Context, name string, value []byte, ttl time.Duration, tags []string) error
	// Delete removes names; absent names are no error.
	Delete(ctx context.Context, names ...string) error
	// DeletePrefixes removes every entry whose name starts with one of
	// prefixes and returns how many it removed.
	DeletePrefixes(ctx context.Context, prefixes []string) (int, error)
	// DeleteTag removes every entry indexed under tag, and the index, and
	// returns how many entries it removed.
	DeleteTag(ctx context.Context, tag string) (int, error)
	// Close releases the store's resources.
	Close() error
}
