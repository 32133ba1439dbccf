package server

import (
	"strings"
	"time"

	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/cache"
	"github.com/migrant-health/mhg/gateway/config"
	"github.com/migrant-health/mhg/gateway/source"
	"github.com/migrant-health/mhg/gateway/telemetry"
)

// The component packages know nothing of package config: the server
// translates each section into the Options of the component it configures.
// The translations that are more than copying fields into a literal (the
// telemetry sampler, the development key of auth, Redis or none, cache
// lifetimes per kind, a source's kind and built-in folder) are here, each a
// function of one section, tested in options_test.go; the steps of New fill
// in the others where they build the component, and add what only the
// running server knows (its logger, its telemetry providers).

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
		ClockSkew: c.ClockSkew, MaxTokenAge: c.MaxTokenAge, TokenCacheEntries: c.TokenCacheEntries}
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

// sourceKinds and patientMatches name the configuration's spellings in the
// source package's; a spelling the configuration does not know is left
// empty, which Open refuses (Validate refuses it first).
var (
	sourceKinds    = map[string]string{config.KindFHIR: source.KindFHIR, config.KindBundle: source.KindBundle}
	patientMatches = map[string]string{config.PatientMatchSearch: source.PatientMatchSearch,
		config.PatientMatchPhonetic: source.PatientMatchPhonetic, config.PatientMatchOperation: source.PatientMatchOperation}
)

// sourceOptions translates one configured source. A source without its own
// timeout gets defaultTimeout (federation.source_timeout); a directory
// written builtin:<name> is the folder <name> of the data built into the
// binary.
func sourceOptions(c config.Source, defaultTimeout time.Duration) source.Options {
	o := source.Options{
		ID: c.ID, Country: c.Country, Profile: c.Profile, Kind: sourceKinds[c.Kind], BaseURL: c.BaseURL,
		Auth:    source.Auth{Type: c.Auth.Type, TokenFile: c.Auth.TokenFile, Username: c.Auth.Username, PasswordFile: c.Auth.PasswordFile},
		Timeout: c.Timeout, Retries: c.Retries, MaxPages: c.MaxPages, MaxResponseBytes: c.MaxResponseBytes,
		Breaker:   source.Breaker{Failures: c.Breaker.Failures, OpenFor: c.Breaker.OpenFor},
		RateLimit: source.RateLimit{PerSecond: c.RateLimit.PerSecond, Burst: c.RateLimit.Burst},
		Dir:       c.Dir,
	}
	if c.PatientMatch != "" {
		o.PatientMatch = patientMatches[c.PatientMatch]
	}
	if o.Timeout == 0 {
		o.Timeout = defaultTimeout
	}
	if name, ok := strings.CutPrefix(c.Dir, config.BuiltinPrefix); ok {
		o.Dir, o.BuiltinDir = "", name
	}
	return o
}
