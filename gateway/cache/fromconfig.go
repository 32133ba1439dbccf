package cache

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/migrant-health/mhg/gateway/config"
)

// FromConfig builds the Cache that the cache and redis sections of the
// configuration describe:
//
//   - cc.Disabled: a pass-through cache (every Fetch loads).
//   - rc.URL or rc.Addrs set: a RedisStore (see NewRedisStore).
//   - otherwise: a MemoryStore bounded by cc.MaxBytes.
//
// TTLs come from cc unless opts.TTL is set, NegativeTTL likewise; keys
// from cc.KeyFile unless opts.Keys is set, else ephemeral keys (with a
// warning when Redis is shared). A Store in opts wins over rc. Redis is not
// contacted here: a dead Redis makes the cache degraded, not the gateway
// unable to start.
func FromConfig(cc config.Cache, rc config.Redis, opts Options) (*Cache, error) {
	if cc.Disabled {
		return New(Options{Logger: opts.Logger, TracerProvider: opts.TracerProvider, MeterProvider: opts.MeterProvider})
	}
	if opts.TTL == nil {
		opts.TTL = map[Kind]time.Duration{
			KindResource: cc.ResourceTTL,
			KindSearch:   cc.SearchTTL,
			KindResolve:  cc.ResolveTTL,
		}
	}
	if opts.NegativeTTL == 0 {
		opts.NegativeTTL = cc.NegativeTTL
	}
	useRedis := rc.URL != "" || len(rc.Addrs) > 0
	if len(opts.Keys.HMAC) == 0 && len(opts.Keys.Values) == 0 {
		if cc.KeyFile != "" {
			k, err := LoadKeys(cc.KeyFile)
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
			opts.Store, err = NewRedisStore(rc, RedisOptions{Logger: opts.Logger, TracerProvider: opts.TracerProvider, MeterProvider: opts.MeterProvider})
		} else {
			opts.Store, err = NewMemoryStore(MemoryOptions{MaxBytes: cc.MaxBytes})
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
