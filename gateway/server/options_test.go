package server

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/migrant-health/mhg/gateway/auth"
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
