package server

import (
	"time"

	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/cache"
	"github.com/migrant-health/mhg/gateway/config"
	"github.com/migrant-health/mhg/gateway/telemetry"
)

// This file is the one place where sections of the configuration become the
// Options of the components they configure: the component packages know
// nothing of package config. Each function translates one section and
// nothing else; what only the running server knows (its logger, its
// telemetry providers) is added by the caller.

// telemetryOptions translates the telemetry section.
func telemetryOptions(c config.Telemetry) (telemetry.Options, error) {
	sampler, err := telemetry.RatioSampler(c.SampleRatio)
	if err != nil {
		return telemetry.Options{}, err
	}
	return telemetry.Options{ServiceName: c.ServiceName, Exporter: c.TracesExporter,
		OTLPEndpoint: c.OTLPEndpoint, OTLPProtocol: c.OTLPProtocol, Sampler: sampler}, nil
}

// AuthOptions translates the auth section into the options of the token
// verifier, which are also what `mhg token` mints with: the development
// key only when auth.dev is set.
func AuthOptions(c config.Auth) auth.VerifierOptions {
	o := auth.VerifierOptions{Issuer: c.Issuer, Audience: c.Audience, JWKSFile: c.JWKSFile, JWKSURL: c.JWKSURL,
		ClockSkew: c.ClockSkew, MaxTokenAge: c.MaxTokenAge}
	if c.Dev {
		o.DevKeyFile = c.DevKeyFile
	}
	return o
}

// RedisOptions translates the redis section into the options of the one
// Redis client the cache, the audit stream and the id table share, which
// `mhg cache purge` opens too. It is nil when no Redis is configured.
func RedisOptions(c config.Redis) *cache.RedisOptions {
	if c.URL == "" && len(c.Addrs) == 0 {
		return nil
	}
	return &cache.RedisOptions{URL: c.URL, Addrs: c.Addrs, MasterName: c.MasterName, Timeout: c.Timeout}
}

// cacheOptions translates the cache section's lifetimes. The store and the
// keys, which need files and connections, are the caller's.
func cacheOptions(c config.Cache) cache.Options {
	return cache.Options{
		TTL:         map[cache.Kind]time.Duration{cache.KindResource: c.ResourceTTL, cache.KindSearch: c.SearchTTL, cache.KindResolve: c.ResolveTTL},
		NegativeTTL: c.NegativeTTL,
	}
}
