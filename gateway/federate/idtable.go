package federate

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"time"

	"github.com/migrant-health/mhg/gateway/cache"
)

// Long upstream ids. FHIR allows ids of 64 characters, and a sealed id
// (source id, a dot, the encrypted upstream id with its tag) only fits
// upstream ids of about 40. An upstream id too long for that gets a
// digest id instead: "<source id>.<keyed digest>", where the digest is
// HMAC-SHA256 over (source, type, upstream id) cut to 16 bytes, 22
// characters. Like a sealed id it is opaque, deterministic (two replicas
// with the same key mint the same id, after a restart too) and bound to
// its type. What it cannot do is give the upstream id back: the id table
// keeps the sealed form (the same authenticated encryption as a sealed
// id, so the table holds no readable upstream id) under the digest id.
// The table lives in the cache's store (in-process by default, Redis when
// configured) under its own key prefix with a long TTL, refreshed each
// time the id is minted again. It is rebuilt by use: every search or read
// that returns the resource mints its id again and puts the entry back,
// so losing the table loses no data, only reads by a long id until a
// search has returned that resource once more. An entry read from the
// table is checked twice (its encryption tag, and the digest recomputed
// from what it decrypts to), so whoever can write to the store cannot
// make an id point elsewhere.

const (
	// digestLen is the length of a digest id's digest in bytes.
	digestLen = 16
	// idTablePrefix starts every id table entry's name in the store; the
	// cache's own names start with its namespace ("mhg:v1:").
	idTablePrefix         = "mhg-ids:v1:"
	defaultIDTableTTL     = 30 * 24 * time.Hour
	defaultIDTableBytes   = 16 << 20
	defaultIDTableTimeout = 2 * time.Second
	// idMemoTTL bounds how long this replica remembers an entry it wrote
	// or read; the shared store is written again after it.
	idMemoTTL = time.Hour
)

// IDStore is what the id table needs of a store: cache.MemoryStore and
// cache.RedisStore have it.
type IDStore interface {
	Get(ctx context.Context, name string) ([]byte, error)
	Set(ctx context.Context, name string, value []byte, ttl time.Duration, tags []string) error
}

var (
	_ IDStore = (*cache.MemoryStore)(nil)
	_ IDStore = (*cache.RedisStore)(nil)
)

// IDTableOptions configure the table behind digest ids. The zero value
// keeps it in-process.
type IDTableOptions struct {
	// Store keeps the table: the cache's Redis store, so that every
	// replica resolves the ids any of them minted. Nil means an in-process
	// store of MaxBytes.
	Store IDStore
	// TTL is how long an entry lives after its id was last minted. Zero
	// means 30 days.
	TTL time.Duration
	// MaxBytes bounds the in-process store (when Store is nil) and this
	// replica's memo of recent entries. Zero means 16 MiB.
	MaxBytes int64
	// Timeout bounds one call to Store. Zero means 2s.
	Timeout time.Duration
	// Logger receives store failures (never an id). Nil discards them.
	Logger *slog.Logger
}

// idTable keeps the sealed upstream ids behind digest ids.
type idTable struct {
	store   IDStore
	memo    *cache.MemoryStore
	ttl     time.Duration
	timeout time.Duration
	log     *slog.Logger
}

func newIDTable(opts IDTableOptions) (*idTable, error) {
	if opts.TTL <= 0 {
		opts.TTL = defaultIDTableTTL
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = defaultIDTableBytes
	}
	if opts.Timeout <= 0 {
		opts.Timeout = defaultIDTableTimeout
	}
	memo, err := cache.NewMemoryStore(cache.MemoryOptions{MaxBytes: opts.MaxBytes})
	if err != nil {
		return nil, fmt.Errorf("id table: %w", err)
	}
	t := &idTable{store: opts.Store, memo: memo, ttl: opts.TTL, timeout: opts.Timeout, log: opts.Logger}
	if t.store == nil {
		// In-process: the memo is the table.
		t.store = memo
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	return t, nil
}

// put records sealed under id, in the shared store unless this replica
// wrote it there within the memo's lifetime.
func (t *idTable) put(id string, sealed []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), t.timeout)
	defer cancel()
	name := idTablePrefix + id
	if t.store != IDStore(t.memo) {
		if v, _ := t.memo.Get(ctx, name); v != nil {
			return
		}
		if err := t.store.Set(ctx, name, sealed, t.ttl, nil); err != nil {
			// The id still works here (the memo) and is written again the
			// next time it is minted.
			t.log.Warn("id table: entry not stored", "error.type", fmt.Sprintf("%T", err))
		}
		_ = t.memo.Set(ctx, name, sealed, min(t.ttl, idMemoTTL), nil)
		return
	}
	_ = t.memo.Set(ctx, name, sealed, t.ttl, nil)
}

// get returns the sealed upstream id behind id, nil when the table does
// not know it.
func (t *idTable) get(ctx context.Context, id string) []byte {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	name := idTablePrefix + id
	if v, _ := t.memo.Get(ctx, name); v != nil {
		return v
	}
	if t.store == IDStore(t.memo) {
		return nil
	}
	v, err := t.store.Get(ctx, name)
	if err != nil {
		t.log.Warn("id table: lookup failed", "error.type", fmt.Sprintf("%T", err))
		return nil
	}
	if v != nil {
		_ = t.memo.Set(ctx, name, v, min(t.ttl, idMemoTTL), nil)
	}
	return v
}

// digest is the keyed digest of a digest id.
func (c *IDCodec) digest(source, resourceType, upstreamID string) []byte {
	m := hmac.New(sha256.New, c.digestKey)
	m.Write([]byte(source))
	m.Write([]byte{0})
	m.Write([]byte(resourceType))
	m.Write([]byte{0})
	m.Write([]byte(upstreamID))
	return m.Sum(nil)[:digestLen]
}

// seal is the authenticated encryption of a compacted upstream id: the
// tag, then the encrypted payload.
func (c *IDCodec) seal(source, resourceType string, payload []byte) []byte {
	tag := c.tag(source, resourceType, payload)
	sealed := make([]byte, tagLen+len(payload))
	copy(sealed, tag)
	c.stream(tag).XORKeyStream(sealed[tagLen:], payload)
	return sealed
}

// open undoes seal and checks the tag.
func (c *IDCodec) open(source, resourceType string, sealed []byte) (string, bool) {
	if len(sealed) <= tagLen {
		return "", false
	}
	tag := sealed[:tagLen]
	payload := make([]byte, len(sealed)-tagLen)
	c.stream(tag).XORKeyStream(payload, sealed[tagLen:])
	if !hmac.Equal(tag, c.tag(source, resourceType, payload)) {
		return "", false
	}
	upstream, ok := expandID(payload)
	if !ok || string(compactID(upstream)) != string(payload) {
		return "", false
	}
	return upstream, true
}

// encodeLong mints the digest id of an upstream id too long to seal into
// a gateway id, and records it in the table.
func (c *IDCodec) encodeLong(source, resourceType, upstreamID string, payload []byte) (string, error) {
	if len(source)+1+idEncoding.EncodedLen(digestLen) > fhirIDMax {
		return "", fmt.Errorf("%w (source id of %d characters)", ErrIDTooLong, len(source))
	}
	id := source + "." + idEncoding.EncodeToString(c.digest(source, resourceType, upstreamID))
	c.table.put(id, c.seal(source, resourceType, payload))
	return id, nil
}

// decodeLong resolves a digest id through the table.
func (c *IDCodec) decodeLong(ctx context.Context, resourceType, id, source string, digest []byte) (string, string, error) {
	sealed := c.table.get(ctx, id)
	if sealed == nil {
		return "", "", fmt.Errorf("%w: not in the id table", ErrBadID)
	}
	upstream, ok := c.open(source, resourceType, sealed)
	if !ok || !hmac.Equal(digest, c.digest(source, resourceType, upstream)) {
		return "", "", fmt.Errorf("%w: id table entry does not match", ErrBadID)
	}
	return source, upstream, nil
}
