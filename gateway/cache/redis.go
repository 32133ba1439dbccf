package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/migrant-health/mhg/gateway/telemetry"
)

// DefaultRedisTimeout bounds each Redis command on the request path when
// RedisOptions.Timeout is zero.
const DefaultRedisTimeout = 50 * time.Millisecond

const (
	// adminTimeoutMin is the least a purge batch (SCAN page, UNLINK
	// pipeline) may take: purges are rare and must not give up at the
	// request path's 50ms.
	adminTimeoutMin = 2 * time.Second
	// scanCount is the SCAN COUNT hint and the UNLINK batch size.
	scanCount = 500
	// minPoolSize: waiting for a pooled connection counts against the
	// 50ms command timeout, so a burst of concurrent requests must not
	// queue behind go-redis's default of 10 per CPU and trip the breaker.
	minPoolSize = 64
)

// RedisOptions say which Redis a RedisStore talks to and how. URL or Addrs
// is required; every other zero value is a sensible default.
type RedisOptions struct {
	// URL is a redis://, rediss:// or unix:// URL: the server of a
	// standalone Redis, or, with Addrs, the username, password, database
	// and TLS settings for them. It is never quoted in errors (it may
	// hold a password). Empty means Addrs alone, without credentials.
	URL string
	// Addrs are the sentinels (with MasterName) or the cluster seed nodes
	// (without). Empty means the standalone server of URL.
	Addrs []string
	// MasterName is the Sentinel master name. Empty with Addrs means
	// Cluster.
	MasterName string
	// Timeout bounds each request-path command; the request goes on
	// without the cache when it expires. Zero means DefaultRedisTimeout;
	// negative is an error.
	Timeout time.Duration

	// TracerProvider receives redisotel's command spans (without command
	// arguments). Nil means the global provider.
	TracerProvider trace.TracerProvider
	// MeterProvider receives redisotel's pool and latency metrics. Nil
	// means the global provider.
	MeterProvider metric.MeterProvider
	// NoTelemetry leaves the client uninstrumented (benchmarks).
	NoTelemetry bool
	// Logger receives what the Redis client library says by itself (dial
	// failures, pool and failover events), as warnings. go-redis has one
	// logger per process, so the last store given one sets it for all.
	// Nil leaves the library's own, which prints plain text to stderr.
	Logger *slog.Logger
}

// redisLog routes go-redis's own messages to a structured logger. They
// name addresses, counts and errors of the connection, never a command's
// keys or values; the text goes under "error" as a LogSafeError, so the
// allow-list handler prints it.
type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	msg := strings.Join(strings.Fields(fmt.Sprintf(format, v...)), " ")
	if len(msg) > 512 {
		msg = msg[:512]
	}
	l.log.WarnContext(ctx, "redis client", slog.Any(telemetry.LogError, redisMessage(msg)))
}

// redisMessage is a message of the Redis client library, safe to log.
type redisMessage string

func (m redisMessage) Error() string      { return string(m) }
func (m redisMessage) LogMessage() string { return string(m) }

// RedisStore is a Store on a go-redis UniversalClient: standalone,
// Sentinel or Cluster. It needs Redis 7 or newer (EXPIRE NX/GT).
//
// Every request-path command runs under the configured timeout, retries
// nothing and dials once, so a slow or dead Redis costs at most one
// timeout per command; the Cache's breaker then stops asking.
type RedisStore struct {
	client  redis.UniversalClient
	timeout time.Duration
	admin   time.Duration
	owned   bool
	closed  atomic.Bool
}

var _ Store = (*RedisStore)(nil)

// NewRedisStore connects (lazily: nothing is dialled until the first
// command, so a dead Redis does not stop the gateway from starting) to the
// Redis that opts names:
//
//   - URL alone: a standalone server (redis://, rediss:// or unix://).
//   - Addrs and MasterName: Sentinel; Addrs are the sentinels.
//   - Addrs alone: Cluster; Addrs are seed nodes.
//
// With Addrs, a URL still supplies username, password, database and TLS.
// The URL is never quoted in errors (it may hold a password).
func NewRedisStore(opts RedisOptions) (*RedisStore, error) {
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = DefaultRedisTimeout
	}
	if timeout < 0 {
		return nil, errors.New("redis: timeout cannot be negative")
	}
	var base *redis.Options
	if opts.URL != "" {
		o, err := redis.ParseURL(opts.URL)
		if err != nil {
			return nil, errors.New("redis: url is not a valid redis://, rediss:// or unix:// URL")
		}
		base = o
	}
	admin := max(20*timeout, adminTimeoutMin)
	var client redis.UniversalClient
	switch {
	case len(opts.Addrs) > 0:
		u := &redis.UniversalOptions{
			Addrs:      opts.Addrs,
			MasterName: opts.MasterName,
			// One address without a master name is still a cluster seed,
			// not a standalone server: the options say so.
			IsClusterMode: opts.MasterName == "",
		}
		if base != nil {
			u.Username, u.Password, u.DB, u.TLSConfig = base.Username, base.Password, base.DB, base.TLSConfig
		}
		u.MaxRetries, u.DialerRetries = -1, 1
		u.DialTimeout, u.ReadTimeout, u.WriteTimeout = admin, admin, admin
		u.PoolTimeout, u.PoolSize = timeout, max(minPoolSize, 10*runtime.GOMAXPROCS(0))
		u.ContextTimeoutEnabled = true
		u.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
		client = redis.NewUniversalClient(u)
	case base != nil:
		base.MaxRetries, base.DialerRetries = -1, 1
		base.DialTimeout, base.ReadTimeout, base.WriteTimeout = admin, admin, admin
		base.PoolTimeout = timeout
		if base.PoolSize == 0 { // not set in the URL (?pool_size=)
			base.PoolSize = max(minPoolSize, 10*runtime.GOMAXPROCS(0))
		}
		base.ContextTimeoutEnabled = true
		base.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
		client = redis.NewClient(base)
	default:
		return nil, errors.New("redis: neither url nor addrs is set")
	}
	if opts.Logger != nil {
		redis.SetLogger(redisLog{opts.Logger})
	}
	s := &RedisStore{client: client, timeout: timeout, admin: admin, owned: true}
	if !opts.NoTelemetry {
		if err := instrumentRedis(client, opts); err != nil {
			_ = client.Close()
			return nil, err
		}
	}
	return s, nil
}
func instrumentRedis(client redis.UniversalClient, opts RedisOptions) error {
	var topts []redisotel.TracingOption
	// Command arguments are cache names and sealed values: opaque, but
	// large and useless in a trace, so they stay out.
	topts = append(topts, redisotel.WithDBStatement(false), redisotel.WithCallerEnabled(false))
	if opts.TracerProvider != nil {
		topts = append(topts, redisotel.WithTracerProvider(opts.TracerProvider))
	}
	if err := redisotel.InstrumentTracing(client, topts...); err != nil {
		return fmt.Errorf("redis: tracing: %w", err)
	}
	var mopts []redisotel.MetricsOption
	if opts.MeterProvider != nil {
		mopts = append(mopts, redisotel.WithMeterProvider(opts.MeterProvider))
	}
	if err := redisotel.InstrumentMetrics(client, mopts...); err != nil {
		return fmt.Errorf("redis: metrics: %w", err)
	}
	return nil
}

// Client returns the underlying client, for sharing the connection pool.
func (s *RedisStore) Client() redis.UniversalClient { return s.client }

// Ping checks that Redis answers within the request-path timeout.
func (s *RedisStore) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: ping: %w", err)
	}
	return nil
}

// Get implements Store.
func (s *RedisStore) Get(ctx context.Context, name string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	b, err := s.client.Get(ctx, name).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("redis: get: %w", err)
	}
	return b, nil
}

// GetMany implements Store with one pipeline of GETs: a single round trip
// on a standalone server, one per node on a cluster, where MGET would fail
// across hash slots.
func (s *RedisStore) GetMany(ctx context.Context, names []string) ([][]byte, error) {
	out := make([][]byte, len(names))
	if len(names) == 0 {
		return out, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	pipe := s.client.Pipeline()
	cmds := make([]*redis.StringCmd, len(names))
	for i, n := range names {
		cmds[i] = pipe.Get(ctx, n)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return out, fmt.Errorf("redis: get many: %w", err)
	}
	for i, c := range cmds {
		b, err := c.Bytes()
		if err == nil {
			out[i] = b
		}
	}
	return out, nil
}

// tagMargin keeps a tag index alive a little past its members, whose TTL
// starts a few commands later.
const tagMargin = time.Second

// Set implements Store. A tag index gets its TTL set when new (NX) and only
// ever lengthened (GT), so it outlives every member and a consent purge
// finds them all. The index is written before the value: a pipeline cut
// short then leaves at worst an index entry without a value, never a
// value that PurgeTag cannot find.
func (s *RedisStore) Set(ctx context.Context, name string, value []byte, ttl time.Duration, tags []string) error {
	if ttl <= 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if len(tags) == 0 {
		if err := s.client.Set(ctx, name, value, ttl).Err(); err != nil {
			return fmt.Errorf("redis: set: %w", err)
		}
		return nil
	}
	ms := (ttl + tagMargin).Milliseconds()
	pipe := s.client.Pipeline()
	for _, t := range tags {
		pipe.SAdd(ctx, t, name)
		pipe.Do(ctx, "PEXPIRE", t, ms, "NX")
		pipe.Do(ctx, "PEXPIRE", t, ms, "GT")
	}
	pipe.Set(ctx, name, value, ttl)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("redis: set: %w", err)
	}
	return nil
}

// Delete implements Store.
func (s *RedisStore) Delete(ctx context.Context, names ...string) error {
	if len(names) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if _, err := s.unlink(ctx, s.client, names); err != nil {
		return fmt.Errorf("redis: delete: %w", err)
	}
	return nil
}

// unlink removes names with one UNLINK per name in a pipeline: a
// multi-key UNLINK fails on a cluster when the names hash to different
// slots, and names of one source do.
func (s *RedisStore) unlink(ctx context.Context, c redis.Cmdable, names []string) (int, error) {
	pipe := c.Pipeline()
	cmds := make([]*redis.IntCmd, len(names))
	for i, n := range names {
		cmds[i] = pipe.Unlink(ctx, n)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, err
	}
	n := 0
	for _, c := range cmds {
		n += int(c.Val())
	}
	return n, nil
}

// DeletePrefixes implements Store: one SCAN over every master, matching the
// prefixes' common start, filtering exactly on the client and unlinking in
// batches, so no command blocks Redis for long.
func (s *RedisStore) DeletePrefixes(ctx context.Context, prefixes []string) (int, error) {
	if len(prefixes) == 0 {
		return 0, nil
	}
	match := globEscape(commonPrefix(prefixes)) + "*"
	keep := func(name string) bool {
		for _, p := range prefixes {
			if strings.HasPrefix(name, p) {
				return true
			}
		}
		return false
	}
	var total atomic.Int64
	err := s.forEachMaster(ctx, func(ctx context.Context, c redis.Cmdable) error {
		n, err := s.scanDelete(ctx, c, match, keep)
		total.Add(int64(n))
		return err
	})
	if err != nil {
		return int(total.Load()), fmt.Errorf("redis: purge: %w", err)
	}
	return int(total.Load()), nil
}

func (s *RedisStore) forEachMaster(ctx context.Context, fn func(context.Context, redis.Cmdable) error) error {
	if cc, ok := s.client.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return fn(ctx, c) })
	}
	return fn(ctx, s.client)
}

func (s *RedisStore) scanDelete(ctx context.Context, c redis.Cmdable, match string, keep func(string) bool) (int, error) {
	var cursor uint64
	total := 0
	for {
		cctx, cancel := context.WithTimeout(ctx, s.admin)
		names, next, err := c.Scan(cctx, cursor, match, scanCount).Result()
		cancel()
		if err != nil {
			return total, err
		}
		batch := names[:0]
		for _, n := range names {
			if keep(n) {
				batch = append(batch, n)
			}
		}
		if len(batch) > 0 {
			cctx, cancel := context.WithTimeout(ctx, s.admin)
			n, err := s.unlink(cctx, c, batch)
			cancel()
			total += n
			if err != nil {
				return total, err
			}
		}
		if next == 0 {
			return total, nil
		}
		cursor = next
	}
}

// DeleteTag implements Store: SSCAN the tag's index, unlink its members in
// batches, then the index itself.
func (s *RedisStore) DeleteTag(ctx context.Context, tag string) (int, error) {
	var cursor uint64
	total := 0
	for {
		cctx, cancel := context.WithTimeout(ctx, s.admin)
		names, next, err := s.client.SScan(cctx, tag, cursor, "", scanCount).Result()
		cancel()
		if err != nil {
			return total, fmt.Errorf("redis: purge tag: %w", err)
		}
		if len(names) > 0 {
			cctx, cancel := context.WithTimeout(ctx, s.admin)
			n, err := s.unlink(cctx, s.client, names)
			cancel()
			total += n
			if err != nil {
				return total, fmt.Errorf("redis: purge tag: %w", err)
			}
		}
		if next == 0 {
			break
		}
		cursor = next
	}
	cctx, cancel := context.WithTimeout(ctx, s.admin)
	defer cancel()
	if err := s.client.Unlink(cctx, tag).Err(); err != nil {
		return total, fmt.Errorf("redis: purge tag: %w", err)
	}
	return total, nil
}

// Close implements Store.
func (s *RedisStore) Close() error {
	if !s.owned || s.closed.Swap(true) {
		return nil
	}
	if err := s.client.Close(); err != nil {
		return fmt.Errorf("redis: close: %w", err)
	}
	return nil
}

func commonPrefix(ss []string) string {
	p := ss[0]
	for _, s := range ss[1:] {
		i := 0
		for i < len(p) && i < len(s) && p[i] == s[i] {
			i++
		}
		p = p[:i]
	}
	return p
}

// globEscape quotes the characters SCAN MATCH treats as pattern syntax.
func globEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\', '^':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
