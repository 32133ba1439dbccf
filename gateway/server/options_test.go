package server

import (
	"context"
	"errors"
	"maps"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/cache"
	"github.com/migrant-health/mhg/gateway/config"
	"github.com/migrant-health/mhg/gateway/telemetry"
)

// The embedded default mints and verifies as is, through the translation
// `mhg token` and `mhg serve` share, with only the key file moved out of
// the working directory.
func TestAuthOptionsDefaultMintsAndVerifies(t *testing.T) {
	cfg := config.Default().Auth
	cfg.DevKeyFile = filepath.Join(t.TempDir(), "dev.pem")
	opts := AuthOptions(cfg)
	tok, err := auth.Mint(opts, auth.MintOptions{Country: "DE", Role: "clinician", Purpose: "TREAT", Scopes: []string{"system/*.rs"}})
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	r, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !slices.Contains(r.Scopes, "system/*.rs") {
		t.Errorf("scopes %v lack system/*.rs", r.Scopes)
	}

	// Outside the development default the key file is not used, even when
	// the section still names one.
	cfg.Dev = false
	cfg.JWKSFile = "issuer-keys.json"
	if opts := AuthOptions(cfg); opts.DevKeyFile != "" {
		t.Fatalf("auth.dev false gave DevKeyFile %q", opts.DevKeyFile)
	}
	if _, err := auth.Mint(AuthOptions(cfg), auth.MintOptions{}); !errors.Is(err, auth.ErrNotDevelopment) {
		t.Fatalf("Mint without auth.dev = %v, want ErrNotDevelopment", err)
	}
}

func TestTelemetryOptions(t *testing.T) {
	c := config.Default().Telemetry
	c.TracesExporter, c.OTLPEndpoint = "otlp", "collector:4317"
	opts, err := telemetryOptions(c)
	if err != nil {
		t.Fatal(err)
	}
	if opts.ServiceName != "mhg" || opts.Exporter != "otlp" || opts.OTLPEndpoint != "collector:4317" || opts.OTLPProtocol != "grpc" || opts.Sampler == nil {
		t.Fatalf("options %+v", opts)
	}
	c.SampleRatio = 2
	if _, err := telemetryOptions(c); !errors.Is(err, telemetry.ErrConfig) {
		t.Fatalf("sample ratio 2: error %v, want telemetry.ErrConfig", err)
	}
}

func TestCacheAndRedisOptions(t *testing.T) {
	cfg := config.Default()
	if RedisOptions(cfg.Redis) != nil {
		t.Fatal("the default has no Redis: RedisOptions must be nil (the in-process cache)")
	}
	cfg.Redis.Addrs, cfg.Redis.MasterName = []string{"10.0.0.1:26379", "10.0.0.2:26379"}, "mymaster"
	r := RedisOptions(cfg.Redis)
	if r == nil || r.URL != "" || len(r.Addrs) != 2 || r.MasterName != "mymaster" || r.Timeout != cfg.Redis.Timeout {
		t.Fatalf("redis options %+v", r)
	}
	c := cacheOptions(cfg.Cache)
	want := map[cache.Kind]time.Duration{cache.KindResource: cfg.Cache.ResourceTTL, cache.KindSearch: cfg.Cache.SearchTTL, cache.KindResolve: cfg.Cache.ResolveTTL}
	if !maps.Equal(c.TTL, want) || c.NegativeTTL != cfg.Cache.NegativeTTL {
		t.Fatalf("cache options TTL %v negative %s, want %v and %s", c.TTL, c.NegativeTTL, want, cfg.Cache.NegativeTTL)
	}
}
