package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultInvalidationChannel is the Redis pub/sub channel NearStores
// announce deletions on.
const DefaultInvalidationChannel = "mhg:cache:invalidate"

// NearOptions configure NewNearStore.
type NearOptions struct {
	// Client publishes and receives invalidations: the Redis the shared
	// store lives on. Required.
	Client redis.UniversalClient
	// Channel is the pub/sub channel. Empty means
	// DefaultInvalidationChannel.
	Channel string
	// TTL is how long an entry read from the shared store is kept in
	// process. Required (> 0).
	TTL time.Duration
	// MaxBytes bounds the in-process copy. Zero means 64 MiB.
	MaxBytes int64
	// Logger receives subscription failures. Nil means slog.Default().
	Logger *slog.Logger
	// Invalidated, when set, is called each time an invalidation from any
	// replica (this one included) has emptied the in-process copy.
	Invalidated func()
}

// NearStore keeps a short-lived in-process copy (a MemoryStore) of what a
// shared store (Redis) holds, so that hot entries cost no round trip, and
// keeps every replica's copy honest: each deletion (Delete, a purge by
// prefix, forget-patient's DeleteTag) is applied to the shared store, then
// published on a Redis channel, and every replica's NearStore empties its
// copy when the message arrives. Emptying the whole copy, rather than the
// entries named, costs little (deletions are rare, the copy short-lived)
// and needs no tag index in process. A message lost while a replica is cut
// off from Redis leaves its copy stale for at most TTL.
type NearStore struct {
	remote Store
	local  *MemoryStore
	opts   NearOptions
	sub    *redis.PubSub
	// gen counts invalidations, so that a value read from the shared store
	// while one arrives is not copied in after the copy was emptied.
	gen  atomic.Uint64
	done chan struct{}
	once sync.Once
}

var _ Store = (*NearStore)(nil)

// NewNearStore puts an in-process copy in front of remote and subscribes
// to the invalidation channel. It waits (up to ctx) until the subscription
// is confirmed, so no invalidation published after it returns is missed.
func NewNearStore(ctx context.Context, remote Store, opts NearOptions) (*NearStore, error) {
	if remote == nil || opts.Client == nil {
		return nil, errors.New("near cache: remote store and redis client are required")
	}
	if opts.TTL <= 0 {
		return nil, errors.New("near cache: ttl must be positive")
	}
	if opts.Channel == "" {
		opts.Channel = DefaultInvalidationChannel
	}
	if opts.MaxBytes == 0 {
		opts.MaxBytes = 64 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	local, err := NewMemoryStore(MemoryOptions{MaxBytes: opts.MaxBytes})
	if err != nil {
		return nil, err
	}
	n := &NearStore{remote: remote, local: local, opts: opts, done: make(chan struct{})}
	n.sub = opts.Client.Subscribe(ctx, opts.Channel)
	if _, err := n.sub.Receive(ctx); err != nil {
		// Redis is away: the copy is emptied on every reconnection below,
		// and go-redis subscribes again by itself.
		opts.Logger.Warn("near cache: not subscribed to invalidations yet; the in-process copy is off until Redis answers", slog.Any("error", err))
		n.gen.Add(1)
	}
	go n.listen()
	return n, nil
}

// listen empties the copy for every invalidation message.
func (n *NearStore) listen() {
	defer close(n.done)
	for range n.sub.Channel() {
		n.invalidateLocal()
	}
}

func (n *NearStore) invalidateLocal() {
	n.gen.Add(1)
	_, _ = n.local.DeletePrefixes(context.Background(), []string{""})
	if n.opts.Invalidated != nil {
		n.opts.Invalidated()
	}
}

// announce empties this replica's copy at once, then tells the others.
func (n *NearStore) announce(ctx context.Context) error {
	n.invalidateLocal()
	if err := n.opts.Client.Publish(ctx, n.opts.Channel, "1").Err(); err != nil {
		return fmt.Errorf("near cache: publish invalidation: %w", err)
	}
	return nil
}

// Get answers from the copy, else from the shared store (copying the
// value in).
func (n *NearStore) Get(ctx context.Context, name string) ([]byte, error) {
	if v, _ := n.local.Get(ctx, name); v != nil {
		return v, nil
	}
	gen := n.gen.Load()
	v, err := n.remote.Get(ctx, name)
	if err != nil || v == nil {
		return v, err
	}
	if n.gen.Load() == gen {
		_ = n.local.Set(ctx, name, v, n.opts.TTL, nil)
	}
	return v, nil
}

// GetMany is Get for several names; the shared store is asked once for
// those the copy lacks.
func (n *NearStore) GetMany(ctx context.Context, names []string) ([][]byte, error) {
	out, _ := n.local.GetMany(ctx, names)
	var missing []string
	var at []int
	for i, v := range out {
		if v == nil {
			missing = append(missing, names[i])
			at = append(at, i)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	gen := n.gen.Load()
	got, err := n.remote.GetMany(ctx, missing)
	if err != nil {
		return nil, err
	}
	keep := n.gen.Load() == gen
	for j, v := range got {
		out[at[j]] = v
		if v != nil && keep {
			_ = n.local.Set(ctx, missing[j], v, n.opts.TTL, nil)
		}
	}
	return out, nil
}

// Set writes the shared store, then the copy.
func (n *NearStore) Set(ctx context.Context, name string, value []byte, ttl time.Duration, tags []string) error {
	if err := n.remote.Set(ctx, name, value, ttl, tags); err != nil {
		return err
	}
	_ = n.local.Set(ctx, name, value, min(ttl, n.opts.TTL), nil)
	return nil
}

// Delete deletes from the shared store and announces it.
func (n *NearStore) Delete(ctx context.Context, names ...string) error {
	err := n.remote.Delete(ctx, names...)
	return errors.Join(err, n.announce(ctx))
}

// DeletePrefixes deletes from the shared store and announces it.
func (n *NearStore) DeletePrefixes(ctx context.Context, prefixes []string) (int, error) {
	c, err := n.remote.DeletePrefixes(ctx, prefixes)
	return c, errors.Join(err, n.announce(ctx))
}

// DeleteTag deletes from the shared store and announces it.
func (n *NearStore) DeleteTag(ctx context.Context, tag string) (int, error) {
	c, err := n.remote.DeleteTag(ctx, tag)
	return c, errors.Join(err, n.announce(ctx))
}

// Close ends the subscription and closes both stores.
func (n *NearStore) Close() error {
	var err error
	n.once.Do(func() {
		err = errors.Join(n.sub.Close(), n.local.Close(), n.remote.Close())
		<-n.done
	})
	return err
}
