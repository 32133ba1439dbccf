package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDefaultIsValid(t *testing.T) {
	cfg := Default()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("the embedded default must validate: %v", err)
	}
	countries := map[string]bool{}
	for _, s := range cfg.Sources {
		countries[s.Country] = true
		if s.Kind != KindBundle || !strings.HasPrefix(s.Dir, BuiltinPrefix) {
			t.Errorf("default source %s must be a built-in bundle source", s.ID)
		}
	}
	if len(countries) < 3 || !countries["DE"] {
		t.Fatalf("the demo needs at least three countries including DE, got %v", countries)
	}
	if cfg.Redis.URL != "" || !cfg.Auth.Dev || cfg.Listen != "127.0.0.1:8080" {
		t.Fatalf("default must be in-process, dev key, 127.0.0.1:8080: %+v", cfg)
	}
}

func TestLoadGood(t *testing.T) {
	cfg, err := Load("testdata/full.good.yml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "0.0.0.0:9090" || len(cfg.Sources) != 2 {
		t.Fatalf("loaded %+v", cfg)
	}
	s := cfg.Sources[0]
	if s.RateLimit != (RateLimit{PerSecond: 20, Burst: 5}) {
		t.Errorf("rate_limit = %+v", s.RateLimit)
	}
	if s.Timeout != 3*time.Second || s.Breaker.OpenFor != 10*time.Second || s.Auth.TokenFile != "/run/secrets/de-token" {
		t.Fatalf("source 0 = %+v", s)
	}
	if cfg.Sources[0].PatientMatch != PatientMatchOperation || cfg.Match.Rate != 60 || cfg.Match.Burst != 5 || cfg.Match.DefaultCount != 5 ||
		cfg.Match.ModelFile != filepath.Join("testdata", "tuned-model.yaml") {
		t.Fatalf("match settings %+v, source 0 patient_match %q", cfg.Match, cfg.Sources[0].PatientMatch)
	}
	if want := filepath.Join("testdata", "data/nl"); cfg.Sources[1].Dir != want {
		t.Fatalf("relative dir = %q, want %q (relative to the config file)", cfg.Sources[1].Dir, want)
	}
	if ids := cfg.Federation.Identifiers; len(ids) != 1 || ids[0].Scope != "cross-border" || ids[0].Systems[0] != "https://id.unhcr.example/case-number" {
		t.Fatalf("identifiers %+v", ids)
	}
	if cfg.Cache.SearchTTL != Default().Cache.SearchTTL {
		t.Fatal("fields the file does not set keep their defaults")
	}
	if cfg.BaseURL() != "https://gateway.example.org/fhir" || cfg.File != "testdata/full.good.yml" {
		t.Fatalf("BaseURL %q, File %q", cfg.BaseURL(), cfg.File)
	}
	if c := cfg.Console; c.OIDC.RoleClaim != "realm_access.roles" || c.Approvals != 2 || c.IdleTimeout != 20*time.Minute || cfg.ConsoleURL() != "https://gateway.example.org/console" {
		t.Fatalf("console %+v at %s", c, cfg.ConsoleURL())
	}

	cfg, err = Load("testdata/empty.good.yml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Sources) != len(Default().Sources) {
		t.Fatal("an empty file keeps the demo sources")
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	env := []string{
		"MHG_LISTEN=127.0.0.1:9999",
		"MHG_REDIS_URL=redis://127.0.0.1:6390/1",
		"MHG_AUDIT_LOG=/tmp/audit.jsonl",
		"MHG_AUTH_ISSUER=https://other-issuer",
		"MHG_CACHE_RESOURCE_TTL=42s",
		"MHG_FEDERATION_MAX_COUNT=50",
		"OTHER_VAR=ignored",
	}
	cfg, err := Load("testdata/full.good.yml", env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:9999" || cfg.Redis.URL != "redis://127.0.0.1:6390/1" || cfg.Audit.Log != "/tmp/audit.jsonl" ||
		cfg.Auth.Issuer != "https://other-issuer" || cfg.Cache.ResourceTTL != 42*time.Second || cfg.Federation.MaxCount != 50 {
		t.Fatalf("environment not applied: %+v", cfg)
	}
	if _, err := Load("", []string{"MHG_CACHE_RESOURCE_TTL=forever"}); err == nil {
		t.Fatal("a malformed environment value must fail")
	}
}

func TestLoadBad(t *testing.T) {
	tests := []struct {
		file string
		want []string // each must appear in the error
	}{
		{"testdata/unknown-field.bad.yml", []string{"lisen"}},
		{"testdata/many-errors.bad.yml", []string{
			"many-errors.bad.yml: listen", "sources[0].id", "sources[0].country", "sources[0].profile", "sources[0].kind",
			"sources[1].base_url", "sources[1].rate_limit: per_second and burst cannot be negative", "sources[2].id: duplicate", "sources[2].dir", "auth: set jwks_file", "auth.clock_skew",
			"telemetry.traces_exporter", "telemetry.sample_ratio", "log.level",
			"federation.identifiers[0]: give systems", "federation.identifiers[0].scope",
			"console.oidc.issuer", "console.oidc.client_id", "console.trace_url", "console.statistics_purpose",
			"sources[2].patient_match: only a fhir source", "match: rate and burst", "match.default_count",
			"policy.memo_entries", "server.pprof_listen",
			"auth.token_cache_entries", "cache.rendered_bytes", "cache.document_bytes",
		}},
		{"testdata/missing.yml", []string{"missing.yml"}},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.file), func(t *testing.T) {
			_, err := Load(tt.file, nil)
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestValidateReportsFieldErrors(t *testing.T) {
	cfg := Default()
	cfg.Sources[0].Country = "Germany"
	cfg.Federation.DefaultCount = 0
	err := cfg.Validate()
	var fe FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("want FieldErrors, got %v", err)
	}
	if !strings.Contains(err.Error(), "sources[0].country") || !strings.Contains(err.Error(), "federation") {
		t.Fatalf("error = %v", err)
	}
}

// TestToMHPBoundsMustBePositive: each $to-mhp bound is checked on its own
// and named in full, so a start-up error points at the one setting.
func TestToMHPBoundsMustBePositive(t *testing.T) {
	for _, tt := range []struct {
		field string
		set   func(*ToMHP)
	}{
		{"to_mhp.max_bundle_bytes", func(m *ToMHP) { m.MaxBundleBytes = 0 }},
		{"to_mhp.max_entries", func(m *ToMHP) { m.MaxEntries = -1 }},
		{"to_mhp.max_output_bytes", func(m *ToMHP) { m.MaxOutputBytes = 0 }},
		{"to_mhp.max_concurrent", func(m *ToMHP) { m.MaxConcurrent = 0 }},
	} {
		t.Run(tt.field, func(t *testing.T) {
			cfg := Default()
			tt.set(&cfg.ToMHP)
			err := cfg.Validate()
			var fe FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("want a FieldError naming %s, got %v", tt.field, err)
			}
		})
	}
	if cfg := Default(); cfg.Validate() != nil {
		t.Fatalf("the defaults must validate: %v", cfg.Validate())
	}
}

func TestRedisURLNotEchoed(t *testing.T) {
	cfg := Default()
	cfg.Redis.URL = "http://user:secret@host"
	err := cfg.Validate()
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("error must name the field without the value: %v", err)
	}
}

func TestLoadFromTempFileRelativeDir(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "mhg.yml")
	if err := os.WriteFile(p, []byte("sources:\n  - {id: x, country: DE, profile: de-basis, kind: bundle, dir: builtin:de-sample}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Sources[0].Dir != "builtin:de-sample" {
		t.Fatalf("builtin dirs are not file paths: %q", cfg.Sources[0].Dir)
	}
}

// The same configuration gives the same problems in the same order:
// sections in field order, fields in section order (server and cache
// durations used to come out in map order).
func TestValidateOrderIsStable(t *testing.T) {
	c := Default()
	c.Server.ReadTimeout, c.Server.WriteTimeout, c.Server.ShutdownTimeout = -1, -1, -1
	c.Cache.ResourceTTL, c.Cache.SearchTTL, c.Cache.NegativeTTL = -1, -1, -1
	c.Log.Level = "loud"
	first := c.Validate()
	if first == nil {
		t.Fatal("want problems")
	}
	want := []string{"server.read_timeout", "server.write_timeout", "server.shutdown_timeout",
		"cache.resource_ttl", "cache.search_ttl", "cache.negative_ttl", "log.level"}
	var got []string
	for _, line := range strings.Split(first.Error(), "\n") {
		_, rest, _ := strings.Cut(line, "config: ")
		field, _, _ := strings.Cut(rest, ":")
		got = append(got, field)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("fields %v, want %v", got, want)
	}
	for range 20 {
		if err := c.Validate(); err.Error() != first.Error() {
			t.Fatalf("order changed:\n%v\nthen\n%v", first, err)
		}
	}
}

func TestLoopbackAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:6060": true, "[::1]:6060": true, "localhost:6060": true, "127.0.0.2:0": true,
		"0.0.0.0:6060": false, ":6060": false, "10.0.0.1:6060": false, "[::]:6060": false,
		"example.org:6060": false, "127.0.0.1": false,
	} {
		if got := LoopbackAddr(addr); got != want {
			t.Errorf("LoopbackAddr(%q) = %v, want %v", addr, got, want)
		}
	}
}

// A configuration with problems in every section reports them in the
// documented order (Validate): listen, then the sections in the order of
// Config's fields, each source in its turn, fields in their order; and in
// the same order every time.
func TestValidateOrderAcrossSections(t *testing.T) {
	want := []string{
		"listen",
		"server.pprof_listen",
		"sources[0].id", "sources[0].country", "sources[0].profile", "sources[0].kind",
		"sources[1].base_url", "sources[1].rate_limit",
		"sources[2].id", "sources[2].dir", "sources[2].patient_match",
		"auth", "auth.clock_skew", "auth.token_cache_entries",
		"policy.memo_entries",
		"redis.url",
		"cache.search_ttl", "cache.rendered_bytes", "cache.document_bytes",
		"federation.identifiers[0]", "federation.identifiers[0].scope",
		"telemetry.traces_exporter", "telemetry.sample_ratio",
		"audit.instance",
		"to_mhp.max_entries",
		"ids.table_ttl",
		"log.level",
		"console.oidc.issuer", "console.oidc.client_id", "console.trace_url", "console.statistics_purpose",
		"match", "match.default_count",
	}
	var first string
	for i := range 20 {
		_, err := Load("testdata/many-errors.bad.yml", nil)
		if err == nil {
			t.Fatal("want problems")
		}
		var got []string
		for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
			var fe FieldError
			if !errors.As(e, &fe) {
				t.Fatalf("%v is not a FieldError", e)
			}
			got = append(got, fe.Field)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("fields in the order\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if i == 0 {
			first = err.Error()
		} else if err.Error() != first {
			t.Fatalf("run %d gave another text:\n%s\nthen\n%s", i, first, err)
		}
	}
}

// Every section of Config validates itself, and Validate asks them in the
// order of Config's fields: a section added to Config without a place in
// sections fails here.
func TestSectionsFollowConfigFields(t *testing.T) {
	var fields []string
	ct := reflect.TypeFor[Config]()
	for i := range ct.NumField() {
		f := ct.Field(i)
		k := f.Type.Kind()
		if k != reflect.Struct && k != reflect.Slice {
			continue // listen, public_url and file: checked first, or not configuration
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		fields = append(fields, name)
	}
	c := Default()
	var names []string
	for _, s := range c.sections() {
		if s.name != "" {
			names = append(names, s.name)
		}
	}
	if !slices.Equal(names, fields) {
		t.Fatalf("sections %v, want Config's sections in field order %v", names, fields)
	}
	if c.sections()[0].name != "" {
		t.Fatal("listen and public_url must be checked first")
	}
}
