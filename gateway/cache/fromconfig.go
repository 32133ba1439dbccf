package cache

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/migrant-health/mhg/gateway/config"
)

// FromConfig builds the Cache that cfg describes:
//
//   - cfg.Cache.Disabled: a pass-through cache (every Fetch loads).
//   - cfg.Redis.URL or cfg.Redis.Addrs set: a RedisStore (see
//     NewRedisStore).
//   - otherwise: a MemoryStore bounded by cfg.Cache.MaxBytes.
//
// TTLs come from cfg.Cache unless opts.TTL is set, NegativeTTL likewise;
// keys from cfg.Cache.KeyFile unless opts.Keys is set, else ephemeral keys
// (with a warning when Redis is shared). A Store in opts wins over cfg.
// Redis is not contacted here: a dead Redis makes the cache degraded, not
// the gateway unable to start.
func FromConfig(cfg config.Config, opts Options) (*Cache, error) {
	if cfg.Cache.Disabled {
		return New(Options{Logger: opts.Logger, TracerProvider: opts.TracerProvider, MeterProvider: opts.MeterProvider})
	}
	if opts.TTL == nil {
		opts.TTL = map[Kind]time.Duration{
			KindResource: cfg.Cache.ResourceTTL,
			KindSearch:   cfg.Cache.SearchTTL,
			KindResolve:  cfg.Cache.ResolveTTL,
		}
	}
	if opts.NegativeTTL == 0 {
		opts.NegativeTTL = cfg.Cache.NegativeTTL
	}
	useRedis := cfg.Redis.URL != "" || len(cfg.Redis.Addrs) > 0
	if len(opts.Keys.HMAC) == 0 && len(opts.Keys.Values) == 0 {
		if cfg.Cache.KeyFile != "" {
			k, err := LoadKeys(cfg.Cache.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("cache.key_file: %w", err)
			}
			opts.Keys = k
		} else if useRedis {
			log := opts.Logger
			if log == nil {
				log = slog.Default()
			}
			log.Warn("cache: no cache.key_file; ephemeral keys make a shared Redis useless across replicas and restarts")
		}
	}
	owned := false
	if opts.Store == nil {
		owned = true
		var err error
		if useRedis {
			opts.Store, err = NewRedisStore(cfg.Redis, RedisOptions{TracerProvider: opts.TracerProvider, MeterProvider: opts.MeterProvider})
		} else {
			opts.Store, err = NewMemoryStore(MemoryOptions{MaxBytes: cfg.Cache.MaxBytes})
		}
		if err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
	}
	c, err := New(opts)
	if err != nil {
		if owned {
			_ = opts.Store.Close()
		}
		return nil, err
	}
	return c, nil
}
