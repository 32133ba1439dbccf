package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/migrant-health/mhg/conformance/examples"
	"github.com/migrant-health/mhg/gateway/audit"
	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/authz"
	"github.com/migrant-health/mhg/gateway/cache"
	"github.com/migrant-health/mhg/gateway/config"
	"github.com/migrant-health/mhg/gateway/federate"
	"github.com/migrant-health/mhg/gateway/fhirapi"
	"github.com/migrant-health/mhg/gateway/source"
	"github.com/migrant-health/mhg/gateway/telemetry"
	"github.com/migrant-health/mhg/mappings"
)

// Version is the gateway version, set at build time with -ldflags.
var Version = "dev"

// Options are what New needs beyond the configuration. The zero value is
// what `mhg serve` uses.
type Options struct {
	// Stdout receives the start-up banner. Nil means os.Stdout.
	Stdout io.Writer
	// Stderr receives logs when Logger is nil. Nil means os.Stderr.
	Stderr io.Writer
	// Logger replaces the JSON logger built from cfg.Log. It is wrapped by
	// the telemetry allow-list either way.
	Logger *slog.Logger
	// TraceExporter replaces the configured trace exporter (tests).
	TraceExporter sdktrace.SpanExporter
	// Environ replaces os.Environ() for OTEL_* variables (tests).
	Environ []string
	// Auditor replaces the audit log built from cfg.Audit. Benchmarks use it
	// to measure what auditing costs; nil is what a deployment runs.
	Auditor fhirapi.Auditor
	// WrapDecider, when set, wraps the policy engine as federation sees it.
	// The non-discrimination suite uses it to prove that it notices a
	// protected attribute leaking into decisions; nil is what a deployment
	// runs.
	WrapDecider func(federate.Decider) federate.Decider
}

// Server is a gateway assembled from configuration.
type Server struct {
	cfg       config.Config
	handler   *fhirapi.Handler
	log       *slog.Logger
	stdout    io.Writer
	telemetry *telemetry.Provider
	policy    *authz.Engine
	cache     *cache.Cache
	audit     *audit.Log
	verifier  *auth.Verifier
	closers   []func(context.Context) error
}

// New builds a gateway from cfg. Everything that can be checked before the
// first request is: sources open, policies compile, keys load.
//
// An error names the setting at fault and its cause in one line; whatever
// was built before it is closed again.
func New(ctx context.Context, cfg config.Config, opts Options) (_ *Server, err error) {
	// s is not the named result: a failed New returns nil, and the deferred
	// cleanup must still reach what was built.
	s := &Server{cfg: cfg, stdout: opts.Stdout}
	if s.stdout == nil {
		s.stdout = os.Stdout
	}
	defer func() {
		if err != nil {
			_ = s.Close(context.Background())
		}
	}()
	s.log = newLogger(cfg.Log, opts)

	s.telemetry, err = telemetry.Setup(ctx, cfg.Telemetry, telemetry.Options{
		TraceExporter: opts.TraceExporter, SyncExport: opts.TraceExporter != nil,
		Logger: s.log, Environ: opts.Environ, Stdout: s.stdout, ServiceVersion: Version,
	})
	if err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	s.closers = append(s.closers, s.telemetry.Shutdown)

	var sources []federate.Source
	var checks []fhirapi.Check
	for _, spec := range cfg.Sources {
		src, err := source.Open(spec, source.Options{Builtin: examples.Builtin, Logger: s.log, DefaultTimeout: cfg.Federation.SourceTimeout})
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", spec.ID, err)
		}
		sources = append(sources, src)
		checks = append(checks, fhirapi.Check{Name: "source:" + spec.ID, Fn: src.Check})
	}

	engine, err := mappings.Load()
	if err != nil {
		return nil, fmt.Errorf("mappings: %w", err)
	}

	var decisionLog io.Writer
	if cfg.Policy.DecisionLog != "" {
		f, err := openAppend(cfg.Policy.DecisionLog)
		if err != nil {
			return nil, &SettingError{Setting: "policy.decision_log", Value: cfg.Policy.DecisionLog, Err: err}
		}
		decisionLog = f
		s.closers = append(s.closers, func(context.Context) error { return f.Close() })
	}
	s.policy, err = authz.New(authz.Options{
		Dir: cfg.Policy.Dir, BundleURL: cfg.Policy.BundleURL, PollInterval: cfg.Policy.PollInterval,
		Watch: cfg.Policy.Watch, DecisionLog: decisionLog, Logger: s.log,
		Labels: map[string]string{"app": "mhg", "version": Version},
	})
	if err != nil {
		if cfg.Policy.BundleURL != "" {
			return nil, &SettingError{Setting: "policy.bundle_url", Err: err}
		}
		if cfg.Policy.Dir != "" {
			return nil, &SettingError{Setting: "policy.dir", Value: cfg.Policy.Dir, Err: err}
		}
		return nil, fmt.Errorf("built-in policies: %w", err)
	}
	s.closers = append(s.closers, func(context.Context) error { s.policy.Close(); return nil })
	// No policy at all makes the gateway unready; a failed reload that
	// left the last good revision serving only degrades it, or one bad
	// edit would take every replica out of the load balancer.
	checks = append(checks,
		fhirapi.Check{Name: "policy", Essential: true, Fn: func(context.Context) error {
			if err := s.policy.Ready(); errors.Is(err, authz.ErrNoPolicy) {
				return err
			}
			return nil
		}},
		fhirapi.Check{Name: "policy-reload", Fn: func(context.Context) error { return s.policy.Ready() }},
	)

	// One Redis client serves the cache and the audit stream.
	var redisStore *cache.RedisStore
	if cfg.Redis.URL != "" || len(cfg.Redis.Addrs) > 0 {
		redisStore, err = cache.NewRedisStore(cfg.Redis, cache.RedisOptions{Logger: s.log})
		if err != nil {
			return nil, fmt.Errorf("redis: %w", err)
		}
		s.closers = append(s.closers, func(context.Context) error { return redisStore.Close() })
	}
	if !cfg.Cache.Disabled {
		copts := cache.Options{Logger: s.log}
		if redisStore != nil {
			copts.Store = redisStore
		}
		s.cache, err = cache.FromConfig(cfg, copts)
		if err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
		s.closers = append(s.closers, func(context.Context) error { return s.cache.Close() })
		// Check asks Redis once through the breaker, so an idle replica
		// notices when Redis is back.
		checks = append(checks, fhirapi.Check{Name: "cache", Fn: s.cache.Check})
	}

	ids, err := idCodec(cfg)
	if err != nil {
		return nil, err
	}
	var decider federate.Decider = s.policy
	if opts.WrapDecider != nil {
		decider = opts.WrapDecider(decider)
	}
	fedOpts := federate.Options{
		Sources: sources, Mapper: engine, Decider: decider, IDs: ids,
		Deadline: cfg.Federation.Deadline, SourceTimeout: cfg.Federation.SourceTimeout, Logger: s.log,
	}
	if s.cache != nil {
		fedOpts.Cache = s.cache
	}
	fed, err := federate.New(fedOpts)
	if err != nil {
		return nil, err
	}

	auditOpts := audit.Options{Path: cfg.Audit.Log, Logger: s.log, Instruments: s.telemetry.Instruments(),
		Observer: audit.Observer{Instance: instanceName()}}
	if cfg.Audit.RedisStream != "" {
		if redisStore == nil {
			return nil, errors.New("audit.redis_stream: needs redis.url (or redis.addrs) to be set")
		}
		auditOpts.Redis, auditOpts.RedisStream = redisStore.Client(), cfg.Audit.RedisStream
	}
	s.audit, err = audit.New(auditOpts)
	if err != nil {
		return nil, auditLogError(cfg.Audit.Log, err)
	}
	s.closers = append(s.closers, func(context.Context) error { return s.audit.Close() })
	checks = append(checks, fhirapi.Check{Name: "audit", Essential: true, Fn: s.audit.Check})

	s.verifier, err = auth.NewVerifier(cfg.Auth, auth.VerifierOptions{Logger: s.log})
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func(context.Context) error { s.verifier.Close(); return nil })

	var auditor fhirapi.Auditor = s.audit
	if opts.Auditor != nil {
		auditor = opts.Auditor
	}
	// The patient summary finds one person in several sources through the
	// identity registry: the mapping's defaults plus what config adds.
	extra := make([]federate.IdentifierSystem, 0, len(cfg.Federation.Identifiers))
	for _, id := range cfg.Federation.Identifiers {
		extra = append(extra, federate.IdentifierSystem{ID: id.ID, Systems: id.Systems, Prefix: id.Prefix,
			Types: id.Types, Country: id.Country, Scope: id.Scope, Partners: id.Partners})
	}
	registry, err := federate.NewIdentityRegistry(federate.WithIdentifierSystems(federate.DefaultIdentifierSystems(engine), extra...))
	if err != nil {
		return nil, fmt.Errorf("federation.identifiers: %w", err)
	}
	linker, err := federate.NewLinker(fed, federate.LinkerOptions{Identity: registry})
	if err != nil {
		return nil, err
	}
	s.handler, err = fhirapi.New(fhirapi.Options{
		Operations: fhirapi.PatientOperations(linker),
		Notifier:   audit.NewNotifier(audit.NotifierOptions{URL: cfg.Audit.NotifyURL, Logger: s.log}),
		Federation: fed, Verifier: s.verifier, Auditor: auditor, AuditSearch: s.audit, Mapper: engine, Policy: s.policy, BaseURL: cfg.BaseURL(),
		DefaultCount: cfg.Federation.DefaultCount, MaxCount: cfg.Federation.MaxCount,
		MaxBodyBytes: cfg.Server.MaxBodyBytes, MaxHeaderBytes: cfg.Server.MaxHeaderBytes,
		ToMHP: fhirapi.ToMHPLimits{MaxBundleBytes: cfg.ToMHP.MaxBundleBytes, MaxEntries: cfg.ToMHP.MaxEntries,
			MaxOutputBytes: cfg.ToMHP.MaxOutputBytes, MaxConcurrent: cfg.ToMHP.MaxConcurrent, SpoolDir: cfg.ToMHP.SpoolDir},
		Checks: checks, Metrics: s.telemetry.MetricsHandler(), Version: Version, Logger: s.log,
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Handler is the gateway's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Run listens on cfg.Listen and serves until ctx is done, then shuts down
// gracefully: no new connections, requests in flight finish (within
// server.shutdown_timeout), then the components close.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		_ = s.Close(context.Background())
		var op *net.OpError
		if errors.As(err, &op) {
			err = op.Err
		}
		return &SettingError{Setting: "listen", Value: s.cfg.Listen, Err: err}
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on a listener the caller opened.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ln = fhirapi.Listener(ln)
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.Server.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.Server.ReadTimeout,
		WriteTimeout:      s.cfg.Server.WriteTimeout,
		IdleTimeout:       s.cfg.Server.IdleTimeout,
		// The handler enforces MaxHeaderBytes with an OperationOutcome;
		// the server's own limit, which answers in plain text, is only a
		// backstop well above it.
		MaxHeaderBytes: 4 * s.cfg.Server.MaxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.banner(ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		_ = s.Close(context.Background())
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "timeout", s.cfg.Server.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.Server.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if cerr := s.Close(sctx); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// Close releases every component, in reverse order of creation.
func (s *Server) Close(ctx context.Context) error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		if err := s.closers[i](ctx); err != nil {
			errs = append(errs, err)
		}
	}
	s.closers = nil
	return errors.Join(errs...)
}

// idCodec builds the gateway id codec from ids.key_file, or for the
// development default from a fixed demo key (ids then stay stable across
// restarts of the demo).
func idCodec(cfg config.Config) (*federate.IDCodec, error) {
	if cfg.IDs.KeyFile == "" {
		if !cfg.Auth.Dev {
			return nil, errors.New("ids.key_file: a key of at least 32 random bytes is needed outside the development default")
		}
		sum := sha256.Sum256([]byte("mhg development gateway id key; not for real data"))
		return federate.NewIDCodec(sum[:])
	}
	b, err := os.ReadFile(cfg.IDs.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("ids.key_file: %w", err)
	}
	c, err := federate.NewIDCodec(b)
	if err != nil {
		return nil, fmt.Errorf("ids.key_file: %w", err)
	}
	return c, nil
}

func newLogger(cfg config.Log, opts Options) *slog.Logger {
	var h slog.Handler
	if opts.Logger != nil {
		h = opts.Logger.Handler()
	} else {
		w := opts.Stderr
		if w == nil {
			w = os.Stderr
		}
		var level slog.Level
		_ = level.UnmarshalText([]byte(cfg.Level))
		ho := &slog.HandlerOptions{Level: level}
		if cfg.Format == "text" {
			h = slog.NewTextHandler(w, ho)
		} else {
			h = slog.NewJSONHandler(w, ho)
		}
	}
	return slog.New(telemetry.NewLogHandler(h))
}

// instanceName names this replica in AuditEvents: the host (pod) name.
func instanceName() string {
	if h, err := os.Hostname(); err == nil {
		return h
	}
	return "mhg"
}

func openAppend(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	return os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
}

// bannerTokenTTL is how long the banner's token lives.
const bannerTokenTTL = time.Hour
