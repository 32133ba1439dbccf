package server

import (
	"context"
	"errors"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/cache"
	"github.com/migrant-health/mhg/gateway/config"
	"github.com/migrant-health/mhg/gateway/source"
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

func TestSourceOptions(t *testing.T) {
	tests := []struct {
		name string
		in   config.Source
		want source.Options
	}{
		{"built-in bundle takes the federation timeout",
			config.Source{ID: "de-sample", Country: "DE", Profile: "de-basis", Kind: config.KindBundle, Dir: config.BuiltinPrefix + "de-sample"},
			source.Options{ID: "de-sample", Country: "DE", Profile: "de-basis", Kind: source.KindBundle, BuiltinDir: "de-sample", Timeout: 5 * time.Second}},
		{"bundle on disk",
			config.Source{ID: "nl", Country: "NL", Profile: "nl-core", Kind: config.KindBundle, Dir: "/data/nl", PatientMatch: config.PatientMatchSearch},
			source.Options{ID: "nl", Country: "NL", Profile: "nl-core", Kind: source.KindBundle, Dir: "/data/nl", PatientMatch: source.PatientMatchSearch, Timeout: 5 * time.Second}},
		{"fhir with every setting",
			config.Source{ID: "de-kbv", Country: "DE", Profile: "de-basis", Kind: config.KindFHIR, BaseURL: "https://ehr.example/fhir",
				Timeout: time.Second, Retries: 2, MaxPages: 3, MaxResponseBytes: 1 << 20, PatientMatch: config.PatientMatchOperation,
				Auth:      config.SourceAuth{Type: "basic", Username: "gw", PasswordFile: "/run/pw"},
				Breaker:   config.Breaker{Failures: 4, OpenFor: time.Minute},
				RateLimit: config.RateLimit{PerSecond: 20, Burst: 5}},
			source.Options{ID: "de-kbv", Country: "DE", Profile: "de-basis", Kind: source.KindFHIR, BaseURL: "https://ehr.example/fhir",
				Timeout: time.Second, Retries: 2, MaxPages: 3, MaxResponseBytes: 1 << 20, PatientMatch: source.PatientMatchOperation,
				Auth:      source.Auth{Type: "basic", Username: "gw", PasswordFile: "/run/pw"},
				Breaker:   source.Breaker{Failures: 4, OpenFor: time.Minute},
				RateLimit: source.RateLimit{PerSecond: 20, Burst: 5}}},
		{"unknown kind stays unknown", config.Source{ID: "x", Kind: "ftp"}, source.Options{ID: "x", Timeout: 5 * time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := sourceOptions(tc.in, 5*time.Second); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("sourceOptions =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}
