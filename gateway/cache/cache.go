package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/migrant-health/mhg/gateway/telemetry"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/singleflight"
)

// Kind says what a cached value is; each kind has its own TTL.
type Kind string

// Kinds of cached values.
const (
	// KindResource is one mapped MHP resource set read from a source.
	KindResource Kind = "res"
	// KindSearch is a search result set from one source.
	KindSearch Kind = "srch"
	// KindResolve is an identifier -> source patient resolution.
	KindResolve Kind = "rslv"
)

// ErrAbsent marks a load result that says "there is nothing": the cache
// keeps that answer for the negative TTL. Loaders wrap it; Fetch returns it
// wrapped.
var ErrAbsent = errors.New("absent")

// errNegative is what Fetch returns for a stored negative answer.
var errNegative = fmt.Errorf("cached negative result: %w", ErrAbsent)

// Key names a cached value. Nothing in it is stored in clear except Kind,
// Source and Version: Parts and Tags are keyed-hashed.
//
// Kind and Source must be 1 to 64 characters of [A-Za-z0-9._-], Version at
// most 64 of those and '+', '@'; a Key that breaks this is never cached
// (Fetch just loads).
type Key struct {
	// Kind selects the TTL.
	Kind Kind
	// Source is the source id; PurgeSource removes all of a source's keys.
	Source string
	// Version is the mapping version, so a new mapping never serves old
	// shapes.
	Version string
	// Parts identify the value within source and kind (resource type,
	// upstream id, search parameters ...). They may hold identifiers.
	Parts []string
	// Tags group values for invalidation (e.g. one patient's values);
	// hashed like Parts.
	Tags []string
}

// Loader produces a value on a miss.
type Loader func(ctx context.Context) ([]byte, error)

// DefaultNamespace starts every storage key when Options.Namespace is
// empty.
const DefaultNamespace = "mhg"

// Options configure a Cache. The zero value is a pass-through cache.
type Options struct {
	// TTL per kind; a missing kind is not cached.
	TTL map[Kind]time.Duration
	// NegativeTTL is how long an ErrAbsent answer is kept; zero disables.
	NegativeTTL time.Duration
	// Store holds the entries. Nil means nothing is cached: every Fetch
	// loads.
	Store Store
	// Keys name and seal entries. Zero means EphemeralKeys(), which suits
	// one in-process replica only.
	Keys Keys
	// Namespace starts every storage key ("<namespace>:v1:..."), so several
	// deployments can share one Redis. Empty means DefaultNamespace.
	Namespace string
	// Breaker stops asking a failing Store.
	Breaker BreakerOptions
	// Logger receives breaker changes and unreadable values (never keys
	// or values). Nil means slog.Default().
	Logger *slog.Logger
	// TracerProvider receives the cache.get spans. Nil means otel's global
	// provider.
	TracerProvider trace.TracerProvider
	// MeterProvider receives the cache counters and the degraded gauge.
	// Nil means otel's global provider.
	MeterProvider metric.MeterProvider
}

// BreakerOptions tune the circuit breaker in front of the Store.
type BreakerOptions struct {
	// Failures is how many consecutive Store failures open the breaker.
	// Zero means 5.
	Failures int
	// OpenFor is how long the breaker stays open (every Store call skipped)
	// before one trial call. Zero means 5s.
	OpenFor time.Duration
}

// Cache is a read-through cache of mapped FHIR data. It is safe for
// concurrent use.
type Cache struct {
	opts    Options
	store   Store
	seal    *sealer
	flights singleflight.Group
	breaker *gobreaker.TwoStepCircuitBreaker[struct{}]
	// storeFailed says the last Store call failed, so Degraded turns true
	// before the breaker has counted enough failures to open.
	storeFailed atomic.Bool
	log         *slog.Logger
	tracer      trace.Tracer
	tel         *instruments
}

// errCallerGone marks a Store call cut short by the caller's own context:
// not the Store's fault, so the breaker ignores it.
var errCallerGone = errors.New("caller context done")

// New returns a Cache. It fails only on invalid options.
func New(opts Options) (*Cache, error) {
	for k, d := range opts.TTL {
		if d < 0 {
			return nil, fmt.Errorf("cache: ttl of kind %q cannot be negative", k)
		}
	}
	if opts.NegativeTTL < 0 {
		return nil, errors.New("cache: negative ttl cannot be negative")
	}
	if opts.Breaker.Failures < 0 || opts.Breaker.OpenFor < 0 {
		return nil, errors.New("cache: breaker settings cannot be negative")
	}
	if opts.Namespace == "" {
		opts.Namespace = DefaultNamespace
	}
	if !validName(opts.Namespace, false) {
		return nil, errors.New("cache: namespace must be 1-64 characters of [A-Za-z0-9._-]")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.TracerProvider == nil {
		opts.TracerProvider = otel.GetTracerProvider()
	}
	if opts.MeterProvider == nil {
		opts.MeterProvider = otel.GetMeterProvider()
	}
	c := &Cache{opts: opts, store: opts.Store, log: opts.Logger}
	c.tracer = opts.TracerProvider.Tracer(instrumentationName)
	if c.store == nil {
		return c, nil
	}
	keys := opts.Keys
	if len(keys.HMAC) == 0 && len(keys.Values) == 0 {
		keys = EphemeralKeys()
	}
	var err error
	if c.seal, err = newSealer(opts.Namespace, keys); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	failures := opts.Breaker.Failures
	if failures == 0 {
		failures = 5
	}
	openFor := opts.Breaker.OpenFor
	if openFor == 0 {
		openFor = 5 * time.Second
	}
	c.breaker = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        "cache-store",
		MaxRequests: 1,
		Timeout:     openFor,
		ReadyToTrip: func(n gobreaker.Counts) bool { return n.ConsecutiveFailures >= uint32(failures) },
		IsExcluded:  func(err error) bool { return errors.Is(err, errCallerGone) },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			c.log.Warn("cache store breaker", "from", from.String(), "to", to.String())
		},
	})
	if c.tel, err = newInstruments(opts.MeterProvider, c.Degraded); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	return c, nil
}

// ttl returns how long values of kind live, 0 when the kind is not cached
// (or there is no store).
func (c *Cache) ttl(kind Kind) time.Duration {
	if c.store == nil {
		return 0
	}
	return c.opts.TTL[kind]
}

// Fetch returns the value for key, calling load on a miss (or when refresh
// is set) and storing what it returns.
//
// Concurrent Fetches of one key share one load and its result or error;
// a refresh forms its own flight (refreshes share one with each other).
// The shared load runs under the first caller's context values and
// deadline but not its cancellation, so one caller that gives up does not
// fail the others; a caller whose context ends stops waiting.
//
// A load error that wraps ErrAbsent is kept for NegativeTTL; until then
// Fetch returns an error wrapping ErrAbsent without loading. Fetch returns
// only load's errors (and the caller's context error): a failing store is
// a miss. The returned slice belongs to the caller.
func (c *Cache) Fetch(ctx context.Context, key Key, refresh bool, load Loader) ([]byte, error) {
	ttl := c.ttl(key.Kind)
	if ttl <= 0 {
		return load(ctx)
	}
	name, ok := c.seal.name(key)
	if !ok {
		c.log.Warn("cache key not storable; loading uncached", "kind", safeLabel(string(key.Kind)), string(telemetry.AttrSourceID), safeLabel(key.Source))
		return load(ctx)
	}
	ctx, span := c.tracer.Start(ctx, telemetry.SpanCacheGet, trace.WithAttributes(
		attrKind.String(string(key.Kind)), attrSource.String(key.Source)))
	defer span.End()
	labels := c.tel.labels(key.Kind, key.Source)

	// recheck: only a clean miss is worth a second look inside the flight;
	// after a store failure it would only add another timeout.
	recheck := false
	if !refresh {
		v, negative, ok, failed := c.lookup(ctx, name)
		if ok {
			c.tel.hits.Add(ctx, 1, labels)
			span.SetAttributes(attrHit.Bool(true))
			if negative {
				return nil, errNegative
			}
			return v, nil
		}
		recheck = !failed
	}
	c.tel.misses.Add(ctx, 1, labels)
	span.SetAttributes(attrHit.Bool(false))

	flight := name
	if refresh {
		flight = "refresh\x00" + name
	}
	ch := c.flights.DoChan(flight, func() (any, error) {
		fctx, cancel := detach(ctx)
		defer cancel()
		return c.fill(fctx, name, key, ttl, recheck, load, labels)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		v, _ := r.Val.([]byte)
		if r.Shared {
			v = bytes.Clone(v)
		}
		return v, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// fill runs once per flight: load, store, return.
func (c *Cache) fill(ctx context.Context, name string, key Key, ttl time.Duration, recheck bool, load Loader, labels metric.MeasurementOption) ([]byte, error) {
	if recheck {
		// A caller that missed just before the previous flight stored its
		// value and ended would otherwise load a second time.
		if v, negative, ok, _ := c.lookup(ctx, name); ok {
			if negative {
				return nil, errNegative
			}
			return v, nil
		}
	}
	c.tel.loads.Add(ctx, 1, labels)
	v, err := load(ctx)
	if err != nil {
		if errors.Is(err, ErrAbsent) && c.opts.NegativeTTL > 0 {
			c.put(ctx, name, flagAbsent, nil, c.opts.NegativeTTL, key.Tags)
		}
		return nil, err
	}
	c.put(ctx, name, flagValue, v, ttl, key.Tags)
	return v, nil
}

// lookup reads and opens one entry; ok is false on a miss, a store failure
// (failed is then true) or an unreadable value (which it deletes).
func (c *Cache) lookup(ctx context.Context, name string) (v []byte, negative, ok, failed bool) {
	var raw []byte
	err := c.guard(ctx, "get", func(ctx context.Context) (err error) {
		raw, err = c.store.Get(ctx, name)
		return err
	})
	if err != nil {
		return nil, false, false, true
	}
	if raw == nil {
		return nil, false, false, false
	}
	flag, payload, err := c.seal.open(name, raw)
	if err != nil {
		c.unreadable(ctx, err, name)
		return nil, false, false, false
	}
	return payload, flag == flagAbsent, true, false
}

// unreadable deletes values that do not open: keeping them would make
// every later read a miss anyway.
func (c *Cache) unreadable(ctx context.Context, why error, names ...string) {
	c.tel.unreadable.Add(ctx, int64(len(names)))
	c.log.Warn("cache value unreadable; deleted", "reason", why.Error(), "count", len(names))
	_ = c.guard(ctx, "delete", func(ctx context.Context) error { return c.store.Delete(ctx, names...) })
}

func (c *Cache) put(ctx context.Context, name string, flag byte, v []byte, ttl time.Duration, tags []string) {
	sealed := c.seal.seal(name, flag, v)
	tagNames := c.seal.tagNames(tags)
	_ = c.guard(ctx, "set", func(ctx context.Context) error {
		return c.store.Set(ctx, name, sealed, ttl, tagNames)
	})
}

// guard runs one Store call behind the breaker and keeps the degraded
// state; an open breaker fails the call at once.
func (c *Cache) guard(ctx context.Context, op string, fn func(context.Context) error) error {
	done, err := c.breaker.Allow()
	if err != nil {
		return err
	}
	err = fn(ctx)
	switch {
	case err == nil:
		c.storeFailed.Store(false)
		done(nil)
	case ctx.Err() != nil:
		done(errCallerGone)
	default:
		c.storeFailed.Store(true)
		c.tel.storeErrors.Add(ctx, 1, c.tel.opLabel(op))
		c.log.Debug("cache store call failed", "op", op, "error", err.Error())
		done(err)
	}
	return err
}

// GetMany reads many keys in one store round trip (a Bundle's worth of
// resources) and returns one slot per key: the value, or nil for a miss,
// a negative entry, an uncached kind or an unstorable key. A failing
// store gives all misses; the error is only ever the caller's context
// error. Unreadable values are deleted.
func (c *Cache) GetMany(ctx context.Context, keys []Key) ([][]byte, error) {
	out := make([][]byte, len(keys))
	if c.store == nil || len(keys) == 0 {
		return out, ctx.Err()
	}
	names := make([]string, 0, len(keys))
	at := make([]int, 0, len(keys))
	for i, k := range keys {
		if c.ttl(k.Kind) <= 0 {
			continue
		}
		if name, ok := c.seal.name(k); ok {
			names = append(names, name)
			at = append(at, i)
		}
	}
	ctx, span := c.tracer.Start(ctx, telemetry.SpanCacheGetMany, trace.WithAttributes(attrCount.Int(len(keys))))
	defer span.End()
	var raws [][]byte
	err := c.guard(ctx, "get_many", func(ctx context.Context) (err error) {
		raws, err = c.store.GetMany(ctx, names)
		return err
	})
	hits := 0
	var bad []string
	var why error
	for j, i := range at {
		labels := c.tel.labels(keys[i].Kind, keys[i].Source)
		if err != nil || j >= len(raws) || raws[j] == nil {
			c.tel.misses.Add(ctx, 1, labels)
			continue
		}
		flag, payload, oerr := c.seal.open(names[j], raws[j])
		if oerr != nil {
			bad, why = append(bad, names[j]), oerr
			c.tel.misses.Add(ctx, 1, labels)
			continue
		}
		if flag == flagAbsent {
			c.tel.misses.Add(ctx, 1, labels)
			continue
		}
		out[i] = payload
		hits++
		c.tel.hits.Add(ctx, 1, labels)
	}
	if len(bad) > 0 {
		c.unreadable(ctx, why, bad...)
	}
	span.SetAttributes(attrHits.Int(hits))
	return out, ctx.Err()
}

// Set stores value under key for its kind's TTL, replacing what was there.
// A kind without TTL is not stored. Errors say the store failed (or the
// key cannot be stored); callers on the request path may ignore them.
func (c *Cache) Set(ctx context.Context, key Key, value []byte) error {
	ttl := c.ttl(key.Kind)
	if ttl <= 0 {
		return nil
	}
	name, ok := c.seal.name(key)
	if !ok {
		return fmt.Errorf("cache: set: key of kind %q, source %q cannot be stored", safeLabel(string(key.Kind)), safeLabel(key.Source))
	}
	sealed := c.seal.seal(name, flagValue, value)
	tags := c.seal.tagNames(key.Tags)
	if err := c.guard(ctx, "set", func(ctx context.Context) error {
		return c.store.Set(ctx, name, sealed, ttl, tags)
	}); err != nil {
		return fmt.Errorf("cache: set: %w", err)
	}
	return nil
}

// Invalidate removes one key's value (or negative entry).
func (c *Cache) Invalidate(ctx context.Context, key Key) error {
	if c.store == nil {
		return nil
	}
	name, ok := c.seal.name(key)
	if !ok {
		return nil
	}
	if err := c.guard(ctx, "delete", func(ctx context.Context) error { return c.store.Delete(ctx, name) }); err != nil {
		return fmt.Errorf("cache: invalidate: %w", err)
	}
	return nil
}

// PurgeSource removes every value of one source and returns how many.
// Unlike the request path it does not go through the breaker: an operator
// who purges wants Redis asked and an error when it cannot be.
func (c *Cache) PurgeSource(ctx context.Context, source string) (int, error) {
	if c.store == nil {
		return 0, nil
	}
	if !validName(source, false) {
		return 0, errors.New("cache: purge: source id must be 1-64 characters of [A-Za-z0-9._-]")
	}
	kinds := make([]Kind, 0, len(c.opts.TTL))
	for k := range c.opts.TTL {
		if validName(string(k), false) {
			kinds = append(kinds, k)
		}
	}
	slices.Sort(kinds)
	prefixes := make([]string, len(kinds))
	for i, k := range kinds {
		prefixes[i] = c.seal.sourcePrefix(k, source)
	}
	n, err := c.store.DeletePrefixes(ctx, prefixes)
	if err != nil {
		return n, fmt.Errorf("cache: purge source %s: %w", source, err)
	}
	c.log.Info("cache purged source", string(telemetry.AttrSourceID), source, "count", n)
	return n, nil
}

// PurgeTag removes every value stored with tag (all of one patient's
// values when consent is revoked) and returns how many. Like PurgeSource
// it bypasses the breaker.
func (c *Cache) PurgeTag(ctx context.Context, tag string) (int, error) {
	if c.store == nil {
		return 0, nil
	}
	n, err := c.store.DeleteTag(ctx, c.seal.tagName(tag))
	if err != nil {
		return n, fmt.Errorf("cache: purge tag: %w", err)
	}
	c.log.Info("cache purged tag", "count", n)
	return n, nil
}

// Degraded reports whether the store is currently bypassed or failing:
// the breaker is not closed, or the last store call failed. Requests are
// then served from the sources; /readyz and the mhg.cache.degraded gauge
// report it.
func (c *Cache) Degraded() bool {
	if c.store == nil {
		return false
	}
	return c.breaker.State() != gobreaker.StateClosed || c.storeFailed.Load()
}

// probeName is read by Check; nothing is ever stored under it.
const probeName = "probe"

// Check asks the store once, through the breaker, and reports whether it
// answered. It is the readiness probe's view of the cache, and because it
// serves as the breaker's trial call, it lets the breaker close again
// after an outage even when no request comes (a pod taken out of rotation
// gets none). A nil error with no store: there is nothing to fail.
func (c *Cache) Check(ctx context.Context) error {
	if c.store == nil {
		return nil
	}
	err := c.guard(ctx, "check", func(ctx context.Context) error {
		_, err := c.store.Get(ctx, c.seal.prefix+probeName)
		return err
	})
	if err != nil {
		return fmt.Errorf("cache store: %w", err)
	}
	return nil
}

// Close releases the cache's connections: it closes the Store, including
// one passed in Options.
func (c *Cache) Close() error {
	if c.store == nil {
		return nil
	}
	c.tel.close()
	if err := c.store.Close(); err != nil {
		return fmt.Errorf("cache: close: %w", err)
	}
	return nil
}

// detach keeps ctx's values and deadline but not its cancellation.
func detach(ctx context.Context) (context.Context, context.CancelFunc) {
	base := context.WithoutCancel(ctx)
	if d, ok := ctx.Deadline(); ok {
		return context.WithDeadline(base, d)
	}
	return base, func() {}
}

// safeLabel returns s when it is a plain label, for logging kinds and
// source ids that failed validation without echoing arbitrary input.
func safeLabel(s string) string {
	if validName(s, true) {
		return s
	}
	return "(invalid)"
}
