package config

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/migrant-health/mhg/mappings"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"go.yaml.in/yaml/v3"
)

// EnvPrefix prefixes every environment override: MHG_LISTEN, MHG_REDIS_URL,
// MHG_AUTH_ISSUER, ...
const EnvPrefix = "MHG_"

// BuiltinPrefix marks a bundle source directory that names sample data
// compiled into the binary (conformance/examples), e.g. "builtin:de".
const BuiltinPrefix = "builtin:"

// Default returns the embedded demo configuration: the sample national
// sources built into the binary, the in-process cache, the built-in
// policies, the development signing key and no exporters.
func Default() Config {
	return Config{
		Listen: "127.0.0.1:8080",
		Server: Server{
			ReadHeaderTimeout:  5 * time.Second,
			ReadTimeout:        30 * time.Second,
			WriteTimeout:       60 * time.Second,
			IdleTimeout:        120 * time.Second,
			ShutdownTimeout:    20 * time.Second,
			MaxBodyBytes:       4 << 20,
			MaxHeaderBytes:     32 << 10,
			MaxAttachmentBytes: 10 << 20,
		},
		Sources: []Source{
			{ID: "de-sample", Country: "DE", Profile: "de-basis", Kind: KindBundle, Dir: BuiltinPrefix + "de-sample"},
			{ID: "nl-sample", Country: "NL", Profile: "nl-core", Kind: KindBundle, Dir: BuiltinPrefix + "nl-sample"},
			{ID: "ua-sample", Country: "UA", Profile: "ips", Kind: KindBundle, Dir: BuiltinPrefix + "ua-sample"},
			{ID: "us-sample", Country: "US", Profile: "us-core", Kind: KindBundle, Dir: BuiltinPrefix + "us-sample"},
		},
		Auth: Auth{
			Dev:        true,
			DevKeyFile: ".mhg/dev-signing-key.pem",
			Issuer:     "https://dev.mhg.invalid/issuer",
			Audience:   "http://127.0.0.1:8080/fhir",
			ClockSkew:  30 * time.Second,
			// auth.DefaultTokenCacheEntries
			TokenCacheEntries: 10000,
		},
		Redis: Redis{Timeout: 50 * time.Millisecond},
		Cache: Cache{
			MaxBytes:    256 << 20,
			ResourceTTL: 10 * time.Minute,
			SearchTTL:   30 * time.Second,
			ResolveTTL:  10 * time.Minute,
			NegativeTTL: 15 * time.Second,
			// fhirapi.DefaultRenderedBytes, federate.DefaultDocumentBytes
			RenderedBytes: 32 << 20,
			DocumentBytes: 16 << 20,
		},
		Federation: Federation{
			Deadline:           10 * time.Second,
			SourceTimeout:      5 * time.Second,
			StatisticsDeadline: 2 * time.Minute,
			MaxCount:           200,
			DefaultCount:       20,
		},
		Match:     Match{Rate: 30, Burst: 10, DefaultCount: 10},
		Telemetry: Telemetry{ServiceName: "mhg", TracesExporter: "none", OTLPProtocol: "grpc", SampleRatio: 1},
		Audit:     Audit{Log: ".mhg/audit.jsonl", Migrate: true, ShipBatch: 500, MaxUnshipped: 100_000},
		ToMHP:     ToMHP{MaxBundleBytes: 64 << 20, MaxEntries: 20_000, MaxOutputBytes: 128 << 20, MaxConcurrent: 2},
		Log:       Log{Level: "info", Format: "json"},
		IDs:       IDs{TableTTL: 30 * 24 * time.Hour},
	}
}

// Load builds the configuration: Default, then the YAML file at path (if
// path is not empty), then MHG_* environment variables from environ (as
// os.Environ returns them), then Validate. Unknown YAML fields are errors.
func Load(path string, environ []string) (Config, error) {
	cfg := Default()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("config: %w", err)
		}
		// A file that lists sources replaces the demo sources rather than
		// appending to them.
		cfg.Sources = nil
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return Config{}, fmt.Errorf("config %s: %w", path, err)
		}
		if len(cfg.Sources) == 0 {
			cfg.Sources = Default().Sources
		}
		cfg.File = path
		dir := filepath.Dir(path)
		for i := range cfg.Sources {
			d := cfg.Sources[i].Dir
			if d != "" && !strings.HasPrefix(d, BuiltinPrefix) && !filepath.IsAbs(d) {
				cfg.Sources[i].Dir = filepath.Join(dir, d)
			}
		}
		if m := cfg.Match.ModelFile; m != "" && !filepath.IsAbs(m) {
			cfg.Match.ModelFile = filepath.Join(dir, m)
		}
	}
	if err := env.ParseWithOptions(&cfg, env.Options{
		Prefix:      EnvPrefix,
		Environment: envMap(environ),
	}); err != nil {
		return Config{}, fmt.Errorf("config environment: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func envMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(k, EnvPrefix) {
			m[k] = v
		}
	}
	return m
}

var (
	sourceIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,15}$`)
	countryPattern  = regexp.MustCompile(`^[A-Z]{2}$`)
	// purposeCode is the shape of an HL7 v3 ActReason code (as auth
	// checks purpose_of_use claims).
	purposeCode = regexp.MustCompile(`^[A-Z][A-Z0-9]{1,31}$`)
)

// FieldError is one problem with one configuration field.
type FieldError struct {
	// File is the config file, "" for defaults and environment.
	File string
	// Field is the YAML path of the field, e.g. "sources[1].country".
	Field string
	// Problem says what is wrong.
	Problem string
}

func (e FieldError) Error() string {
	if e.File != "" {
		return fmt.Sprintf("%s: %s: %s", e.File, e.Field, e.Problem)
	}
	return fmt.Sprintf("config: %s: %s", e.Field, e.Problem)
}

// Validate checks the whole configuration and returns every problem found,
// joined; each is a FieldError naming the field. The order is documented
// and stable: listen and public_url first, then each section in the order
// of Config's fields (server, sources, auth, policy, redis, cache,
// federation, telemetry, audit, to_mhp, ids, log, console, match), each
// source in its turn, and within a section or a source the problems in the
// order of its fields (one named after several fields, such as "auth" or
// "match", where the first of them is). The same configuration always
// gives the same list, in the same order.
func (c *Config) Validate() error {
	p := &problems{file: c.File}
	for _, s := range c.sections() {
		s.validate(p)
	}
	return errors.Join(p.errs...)
}

// section is one part of the configuration that validates itself.
type section struct {
	// name is the section's YAML key ("" for the top-level addresses).
	name     string
	validate func(*problems)
}

// sections lists what Validate checks, in the order it reports problems:
// the order of Config's fields (a test holds it to that).
func (c *Config) sections() []section {
	return []section{
		{"", c.validateAddresses},
		{"server", c.Server.validate},
		{"sources", func(p *problems) { validateSources(p, c.Sources) }},
		{"auth", c.Auth.validate},
		{"policy", c.Policy.validate},
		{"redis", c.Redis.validate},
		{"cache", c.Cache.validate},
		{"federation", c.Federation.validate},
		{"telemetry", c.Telemetry.validate},
		{"audit", c.Audit.validate},
		{"to_mhp", c.ToMHP.validate},
		{"ids", c.IDs.validate},
		{"log", c.Log.validate},
		{"console", c.Console.validate},
		{"match", c.Match.validate},
	}
}

// validateAddresses checks listen and public_url.
func (c *Config) validateAddresses(p *problems) {
	if c.Listen == "" || !strings.Contains(c.Listen, ":") {
		p.bad("listen", "want host:port, got %q", c.Listen)
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || u.Scheme == "" || u.Host == "" {
			p.bad("public_url", "want an absolute http(s) URL, got %q", c.PublicURL)
		}
	}
}

func (ids IDs) validate(p *problems) {
	if ids.TableTTL < 0 {
		p.bad("ids.table_ttl", "cannot be negative")
	}
}

// problems collects FieldErrors in the order they are found.
type problems struct {
	file string
	errs []error
}

func (p *problems) bad(field, format string, args ...any) {
	p.errs = append(p.errs, FieldError{File: p.file, Field: field, Problem: fmt.Sprintf(format, args...)})
}

type namedDuration struct {
	field string
	d     time.Duration
}

func (s Server) validate(p *problems) {
	for _, d := range []namedDuration{
		{"server.read_header_timeout", s.ReadHeaderTimeout}, {"server.read_timeout", s.ReadTimeout},
		{"server.write_timeout", s.WriteTimeout}, {"server.shutdown_timeout", s.ShutdownTimeout},
	} {
		if d.d <= 0 {
			p.bad(d.field, "must be positive, got %s", d.d)
		}
	}
	if s.MaxBodyBytes <= 0 {
		p.bad("server.max_body_bytes", "must be positive")
	}
	if s.MaxHeaderBytes <= 0 {
		p.bad("server.max_header_bytes", "must be positive")
	}
	if s.MaxAttachmentBytes <= 0 {
		p.bad("server.max_attachment_bytes", "must be positive")
	}
	if s.PprofListen != "" && !LoopbackAddr(s.PprofListen) {
		p.bad("server.pprof_listen", "want a loopback host:port (127.0.0.1, ::1 or localhost): the profiler shows the gateway's memory, got %q", s.PprofListen)
	}
}

// LoopbackAddr reports whether addr is host:port with a loopback host
// (an IP in 127.0.0.0/8 or ::1, or localhost).
func LoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func validateSources(p *problems, sources []Source) {
	if len(sources) == 0 {
		p.bad("sources", "at least one source is needed")
	}
	seen := map[string]bool{}
	for i, src := range sources {
		f := fmt.Sprintf("sources[%d]", i)
		if !sourceIDPattern.MatchString(src.ID) {
			p.bad(f+".id", "want 1-16 of a-z, 0-9 and '-', got %q", src.ID)
		} else if seen[src.ID] {
			p.bad(f+".id", "duplicate source id %q", src.ID)
		}
		seen[src.ID] = true
		src.validate(p, f)
	}
}

func (src Source) validate(p *problems, f string) {
	if !countryPattern.MatchString(src.Country) {
		p.bad(f+".country", "want an ISO 3166-1 alpha-2 code such as DE, got %q", src.Country)
	}
	if src.Profile == "" {
		p.bad(f+".profile", "a national profile id is needed (de-basis, us-core, ...)")
	}
	switch src.Kind {
	case KindFHIR:
		u, err := url.Parse(src.BaseURL)
		if src.BaseURL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.bad(f+".base_url", "want an http(s) FHIR base URL, got %q", src.BaseURL)
		}
	case KindBundle:
		if src.Dir == "" {
			p.bad(f+".dir", "a bundle source needs a directory")
		}
	default:
		p.bad(f+".kind", "want %q or %q, got %q", KindFHIR, KindBundle, src.Kind)
	}
	if src.Timeout < 0 || src.Retries < 0 || src.MaxPages < 0 || src.MaxResponseBytes < 0 {
		p.bad(f, "timeout, retries, max_pages and max_response_bytes cannot be negative")
	}
	if src.Kind == KindFHIR {
		switch src.Auth.Type {
		case "", "bearer", "basic":
		default:
			p.bad(f+".auth.type", "want bearer, basic or nothing, got %q", src.Auth.Type)
		}
		if src.Auth.Type == "bearer" && src.Auth.TokenFile == "" {
			p.bad(f+".auth.token_file", "bearer auth needs a token file")
		}
		if src.Auth.Type == "basic" && (src.Auth.Username == "" || src.Auth.PasswordFile == "") {
			p.bad(f+".auth", "basic auth needs username and password_file")
		}
	}
	if src.RateLimit.PerSecond < 0 || src.RateLimit.Burst < 0 {
		p.bad(f+".rate_limit", "per_second and burst cannot be negative")
	}
	if src.RateLimit.Burst > 0 && src.RateLimit.PerSecond == 0 {
		p.bad(f+".rate_limit", "burst needs per_second")
	}
	switch src.PatientMatch {
	case "", PatientMatchSearch, PatientMatchPhonetic:
	case PatientMatchOperation:
		if src.Kind != KindFHIR {
			p.bad(f+".patient_match", "only a fhir source can answer Patient/$match itself")
		}
	default:
		p.bad(f+".patient_match", "want %s, %s or %s, got %q", PatientMatchSearch, PatientMatchPhonetic, PatientMatchOperation, src.PatientMatch)
	}
}

func (m Match) validate(p *problems) {
	if m.Rate < 1 || m.Burst < 1 {
		p.bad("match", "rate and burst must be at least 1 (requests per minute, and at once)")
	}
	if m.DefaultCount < 1 {
		p.bad("match.default_count", "must be at least 1, got %d", m.DefaultCount)
	}
}

func (a Auth) validate(p *problems) {
	if !a.Dev && a.JWKSFile == "" && a.JWKSURL == "" {
		p.bad("auth", "set jwks_file or jwks_url, or dev: true for the development key")
	}
	if a.Dev && a.DevKeyFile == "" {
		p.bad("auth.dev_key_file", "the development key needs a file path")
	}
	if a.Issuer == "" {
		p.bad("auth.issuer", "the expected token issuer is needed")
	}
	if a.Audience == "" {
		p.bad("auth.audience", "the expected token audience is needed")
	}
	if a.ClockSkew < 0 || a.ClockSkew > 5*time.Minute {
		p.bad("auth.clock_skew", "must be between 0 and 5m, got %s", a.ClockSkew)
	}
	if a.MaxTokenAge < 0 {
		p.bad("auth.max_token_age", "cannot be negative")
	}
	if a.TokenCacheEntries < -1 {
		p.bad("auth.token_cache_entries", "want -1 (off), 0 (the default) or a positive bound, got %d", a.TokenCacheEntries)
	}
}

func (pol Policy) validate(p *problems) {
	if pol.BundleURL != "" {
		if u, err := url.Parse(pol.BundleURL); err != nil || u.Scheme == "" {
			p.bad("policy.bundle_url", "want an absolute URL, got %q", pol.BundleURL)
		}
	}
	if pol.MemoEntries < -1 {
		p.bad("policy.memo_entries", "want -1 (off), 0 (the default) or a positive bound, got %d", pol.MemoEntries)
	}
}

func (a Audit) validate(p *problems) {
	if a.NotifyURL != "" {
		if u, err := url.Parse(a.NotifyURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.bad("audit.notify_url", "want an http(s) URL")
		}
	}
	if a.DatabaseURL != "" {
		if u, err := url.Parse(a.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			p.bad("audit.database_url", "want postgres:// or postgresql:// (the value is not repeated here)")
		}
	}
	if a.DatabaseMaxConns < 0 {
		p.bad("audit.database_max_conns", "cannot be negative")
	}
	if strings.ContainsAny(a.Instance, " \t\n/") {
		p.bad("audit.instance", "no spaces or slashes, got %q", a.Instance)
	}
	if a.ShipBatch < 0 {
		p.bad("audit.ship_batch", "cannot be negative")
	}
	if a.MaxUnshipped < 0 {
		p.bad("audit.max_unshipped", "cannot be negative")
	}
	if a.CheckpointKeyFile != "" && a.DatabaseURL == "" {
		p.bad("audit.checkpoint_key_file", "checkpoints are stored in the repository: set audit.database_url too")
	}
	if a.CheckpointInterval < 0 {
		p.bad("audit.checkpoint_interval", "cannot be negative")
	}
}

func (r Redis) validate(p *problems) {
	if r.URL != "" {
		if u, err := url.Parse(r.URL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
			p.bad("redis.url", "want redis://, rediss:// or unix:// (the value is not repeated here)")
		}
	}
	if r.Timeout < 0 {
		p.bad("redis.timeout", "cannot be negative")
	}
}

func (c Cache) validate(p *problems) {
	for _, d := range []namedDuration{
		{"cache.resource_ttl", c.ResourceTTL}, {"cache.search_ttl", c.SearchTTL},
		{"cache.resolve_ttl", c.ResolveTTL}, {"cache.negative_ttl", c.NegativeTTL},
		{"cache.local_ttl", c.LocalTTL},
	} {
		if d.d < 0 {
			p.bad(d.field, "cannot be negative")
		}
	}
	if c.RenderedBytes < -1 {
		p.bad("cache.rendered_bytes", "want -1 (off), 0 (the default) or a positive bound, got %d", c.RenderedBytes)
	}
	if c.DocumentBytes < -1 {
		p.bad("cache.document_bytes", "want -1 (off), 0 (the default) or a positive bound, got %d", c.DocumentBytes)
	}
}

func (fed Federation) validate(p *problems) {
	if fed.Deadline <= 0 {
		p.bad("federation.deadline", "must be positive")
	}
	if fed.SourceTimeout <= 0 {
		p.bad("federation.source_timeout", "must be positive")
	}
	if fed.StatisticsDeadline <= 0 {
		p.bad("federation.statistics_deadline", "must be positive")
	}
	if fed.MaxCount <= 0 || fed.DefaultCount <= 0 || fed.DefaultCount > fed.MaxCount {
		p.bad("federation", "want 0 < default_count <= max_count")
	}
	for i, id := range fed.Identifiers {
		f := fmt.Sprintf("federation.identifiers[%d]", i)
		if id.ID == "" {
			p.bad(f+".id", "an id is needed")
		}
		if len(id.Systems) == 0 && id.Prefix == "" && len(id.Types) == 0 {
			p.bad(f, "give systems, a prefix or types")
		}
		switch id.Scope {
		case mappings.ScopeCrossBorder, mappings.ScopeDomestic, mappings.ScopeNone:
		default:
			p.bad(f+".scope", "want cross-border, domestic or none, got %q", id.Scope)
		}
		if id.Country != "" && !countryPattern.MatchString(id.Country) {
			p.bad(f+".country", "want an ISO 3166-1 alpha-2 code, got %q", id.Country)
		}
		for _, c := range id.Partners {
			if !countryPattern.MatchString(c) {
				p.bad(f+".partners", "want ISO 3166-1 alpha-2 codes, got %q", c)
			}
		}
	}
}

func (t ToMHP) validate(p *problems) {
	for _, n := range []struct {
		field string
		v     int64
	}{
		{"to_mhp.max_bundle_bytes", t.MaxBundleBytes}, {"to_mhp.max_entries", int64(t.MaxEntries)},
		{"to_mhp.max_output_bytes", t.MaxOutputBytes}, {"to_mhp.max_concurrent", int64(t.MaxConcurrent)},
	} {
		if n.v <= 0 {
			p.bad(n.field, "must be positive")
		}
	}
}

func (t Telemetry) validate(p *problems) {
	switch t.TracesExporter {
	case "", "none", "console", "otlp":
	default:
		p.bad("telemetry.traces_exporter", "want none, console or otlp, got %q", t.TracesExporter)
	}
	switch t.OTLPProtocol {
	case "", "grpc", "http/protobuf":
	default:
		p.bad("telemetry.otlp_protocol", "want grpc or http/protobuf, got %q", t.OTLPProtocol)
	}
	if t.SampleRatio < 0 || t.SampleRatio > 1 {
		p.bad("telemetry.sample_ratio", "want 0..1, got %v", t.SampleRatio)
	}
}

func (l Log) validate(p *problems) {
	switch l.Level {
	case "debug", "info", "warn", "error":
	default:
		p.bad("log.level", "want debug, info, warn or error, got %q", l.Level)
	}
	switch l.Format {
	case "json", "text":
	default:
		p.bad("log.format", "want json or text, got %q", l.Format)
	}
}

func (con Console) validate(p *problems) {
	if o := con.OIDC; o.Issuer != "" {
		if u, err := url.Parse(o.Issuer); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.bad("console.oidc.issuer", "want an http(s) URL, got %q", o.Issuer)
		}
		if o.ClientID == "" {
			p.bad("console.oidc.client_id", "the console's client id at the identity provider is needed")
		}
	}
	if con.Country != "" && !countryPattern.MatchString(con.Country) {
		p.bad("console.country", "want an ISO 3166-1 alpha-2 code, got %q", con.Country)
	}
	if con.IdleTimeout < 0 || con.Approvals < 0 || con.Approvals > 5 {
		p.bad("console", "idle_timeout cannot be negative; approvals is 0 to 5")
	}
	if con.TraceURL != "" && !strings.Contains(con.TraceURL, "{trace_id}") {
		p.bad("console.trace_url", "must contain {trace_id}")
	}
	if con.StatisticsPurpose != "" && !purposeCode.MatchString(con.StatisticsPurpose) {
		p.bad("console.statistics_purpose", "want an HL7 v3 ActReason code such as PUBHLTH, got %q", con.StatisticsPurpose)
	}
}

// BaseURL returns the FHIR base URL clients see.
func (c *Config) BaseURL() string {
	if c.PublicURL != "" {
		return strings.TrimRight(c.PublicURL, "/")
	}
	return "http://" + c.Listen + "/fhir"
}

// ConsoleURL returns the console's public URL: the FHIR base with /fhir
// replaced by /console.
func (c *Config) ConsoleURL() string {
	return strings.TrimSuffix(c.BaseURL(), "/fhir") + "/console"
}
