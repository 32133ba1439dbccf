package server

import (
	"cmp"
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
	"strings"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/migrant-health/mhg/conformance/examples"
	"github.com/migrant-health/mhg/conformance/measures"
	"github.com/migrant-health/mhg/gateway/audit"
	"github.com/migrant-health/mhg/gateway/audit/repository"
	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/authz"
	"github.com/migrant-health/mhg/gateway/cache"
	"github.com/migrant-health/mhg/gateway/config"
	"github.com/migrant-health/mhg/gateway/console"
	"github.com/migrant-health/mhg/gateway/federate"
	"github.com/migrant-health/mhg/gateway/fhirapi"
	"github.com/migrant-health/mhg/gateway/match"
	"github.com/migrant-health/mhg/gateway/ratelimit"
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
	root      http.Handler
	console   *console.Console
	log       *slog.Logger
	stdout    io.Writer
	telemetry *telemetry.Provider
	policy    *authz.Engine
	cache     *cache.Cache
	audit     *audit.Log
	// auditor is what records requests: the log, behind the shipping
	// gate when a repository is configured.
	auditor fhirapi.Auditor
	// auditSearch answers auditors: the repository when configured, else
	// the local log.
	auditSearch audit.Searcher
	repo        *repository.Repository
	shipper     *repository.Shipper
	verifier    *auth.Verifier
	closers     []func(context.Context) error
	pprofAddr   string // where the profiler listens; empty when it does not
	// statistics serves the console's statistics page (nil: none).
	statistics console.Statistics
}

// New builds a gateway from cfg. Everything that can be checked before the
// first request is: sources open, policies compile, keys load.
//
// New only wires: it runs its steps in order (telemetry, sources, mappings,
// policy, Redis, cache, federation, audit log, audit repository, token
// verifier, FHIR handler, console), each of which builds one component from
// the Options its section translates into (options.go) and hands on what
// later steps need in a wiring.
//
// An error names the setting at fault and its cause in one line; whatever
// was built before it is closed again.
func New(ctx context.Context, cfg config.Config, opts Options) (_ *Server, err error) {
	// s is not the named result: a failed New returns nil, and the deferred
	// cleanup must still reach what was built.
	s := &Server{cfg: cfg, stdout: cmp.Or[io.Writer](opts.Stdout, os.Stdout)}
	defer func() {
		if err != nil {
			_ = s.Close(context.Background())
		}
	}()
	s.log = newLogger(cfg.Log, opts)
	w := &wiring{opts: opts}
	for _, step := range []func(context.Context, *wiring) error{
		s.openTelemetry, s.openSources, s.loadMappings, s.openPolicy, s.openRedis, s.openCache,
		s.newFederation, s.openAudit, s.openRepository, s.newVerifier, s.newHandler, s.openConsole,
	} {
		if err := step(ctx, w); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// wiring is what New's steps hand on to the steps after them.
type wiring struct {
	opts Options
	// checks are the readiness checks, each added by the step that opens
	// what it checks.
	checks  []fhirapi.Check
	sources []federate.Source
	mapper  *mappings.Engine
	// redis is the one Redis client of the cache, the audit stream and
	// the id table; nil without Redis.
	redis *cache.RedisStore
	fed   *federate.Service
}

// The steps of New, in order. Each opens one component from its section of
// the configuration (translated into the component's Options in
// options.go), registers what closes it and adds its readiness checks.

func (s *Server) openTelemetry(ctx context.Context, w *wiring) error {
	opts := w.opts
	topts, err := telemetryOptions(s.cfg.Telemetry)
	if err != nil {
		return &SettingError{Setting: "telemetry.sample_ratio", Err: err}
	}
	topts.TraceExporter, topts.SyncExport = opts.TraceExporter, opts.TraceExporter != nil
	topts.Logger, topts.Environ, topts.Stdout, topts.ServiceVersion = s.log, opts.Environ, s.stdout, Version
	if s.telemetry, err = telemetry.Setup(ctx, topts); err != nil {
		return &SettingError{Setting: "telemetry", Err: err}
	}
	s.closers = append(s.closers, s.telemetry.Shutdown)
	return nil
}

// openSources opens every configured source, each with its readiness check.
func (s *Server) openSources(_ context.Context, w *wiring) error {
	for i, spec := range s.cfg.Sources {
		sopts := sourceOptions(spec, s.cfg.Federation.SourceTimeout)
		sopts.Builtin, sopts.Logger, sopts.MeterProvider = examples.Builtin, s.log, s.telemetry.MeterProvider()
		src, err := source.Open(sopts)
		if err != nil {
			return &SettingError{Setting: fmt.Sprintf("sources[%d]", i), Err: err}
		}
		w.sources = append(w.sources, src)
		w.checks = append(w.checks, fhirapi.Check{Name: "source:" + spec.ID, Fn: src.Check})
	}
	return nil
}

// loadMappings loads the mapping engine with its built-in profiles.
func (s *Server) loadMappings(_ context.Context, w *wiring) error {
	engine, err := mappings.Load()
	if err != nil {
		return fmt.Errorf("mappings: %w", err)
	}
	w.mapper = engine
	return nil
}

func (s *Server) openPolicy(_ context.Context, w *wiring) error {
	var decisionLog io.Writer
	if s.cfg.Policy.DecisionLog != "" {
		f, err := openAppend(s.cfg.Policy.DecisionLog)
		if err != nil {
			return &SettingError{Setting: "policy.decision_log", Value: s.cfg.Policy.DecisionLog, Err: err}
		}
		decisionLog = f
		s.closers = append(s.closers, func(context.Context) error { return f.Close() })
	}
	pc := s.cfg.Policy
	var err error
	s.policy, err = authz.New(authz.Options{
		Dir: pc.Dir, BundleURL: pc.BundleURL, PollInterval: pc.PollInterval,
		Watch: pc.Watch, DecisionLog: decisionLog, Logger: s.log, MeterProvider: s.telemetry.MeterProvider(),
		MemoEntries: pc.MemoEntries,
		Labels:      map[string]string{"app": "mhg", "version": Version, "instance": s.instance()},
	})
	if err != nil {
		switch {
		case pc.BundleURL != "":
			return &SettingError{Setting: "policy.bundle_url", Err: err}
		case pc.Dir != "":
			return &SettingError{Setting: "policy.dir", Value: pc.Dir, Err: err}
		}
		return fmt.Errorf("built-in policies: %w", err)
	}
	s.closers = append(s.closers, func(context.Context) error { s.policy.Close(); return nil })
	w.checks = append(w.checks, s.policyChecks()...)
	return nil
}

// policyChecks: no policy at all makes the gateway unready; a failed
// reload that left the last good revision serving only degrades it, or one
// bad edit would take every replica out of the load balancer.
func (s *Server) policyChecks() []fhirapi.Check {
	return []fhirapi.Check{
		{Name: "policy", Essential: true, Fn: func(context.Context) error {
			if err := s.policy.Ready(); errors.Is(err, authz.ErrNoPolicy) {
				return err
			}
			return nil
		}},
		{Name: "policy-reload", Fn: func(context.Context) error { return s.policy.Ready() }},
	}
}

// openRedis opens the one Redis client when one is configured.
func (s *Server) openRedis(_ context.Context, w *wiring) error {
	ropts := RedisOptions(s.cfg.Redis)
	if ropts == nil {
		return nil
	}
	ropts.Logger, ropts.TracerProvider, ropts.MeterProvider = s.log, s.telemetry.TracerProvider(), s.telemetry.MeterProvider()
	rs, err := cache.NewRedisStore(*ropts)
	if err != nil {
		// The URL is not repeated: it may carry a password.
		setting := "redis.url"
		if s.cfg.Redis.URL == "" {
			setting = "redis.addrs"
		}
		return &SettingError{Setting: setting, Err: err}
	}
	s.closers = append(s.closers, func(context.Context) error { return rs.Close() })
	w.redis = rs
	return nil
}

// openCache builds the cache, over Redis when there is one, else over an
// in-process store bounded by cache.max_bytes; none when cache.disabled.
func (s *Server) openCache(_ context.Context, w *wiring) error {
	if s.cfg.Cache.Disabled {
		return nil
	}
	redisStore := w.redis
	copts := cacheOptions(s.cfg.Cache)
	copts.Logger, copts.MeterProvider, copts.TracerProvider = s.log, s.telemetry.MeterProvider(), s.telemetry.TracerProvider()
	if redisStore == nil {
		mem, err := cache.NewMemoryStore(cache.MemoryOptions{MaxBytes: s.cfg.Cache.MaxBytes})
		if err != nil {
			return &SettingError{Setting: "cache.max_bytes", Err: err}
		}
		copts.Store = mem
	} else {
		copts.Store = redisStore
		if ttl := s.cfg.Cache.LocalTTL; ttl > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			near, err := cache.NewNearStore(ctx, redisStore, cache.NearOptions{Client: redisStore.Client(), TTL: ttl, Logger: s.log})
			cancel()
			if err != nil {
				return &SettingError{Setting: "cache.local_ttl", Err: err}
			}
			copts.Store = near
		}
	}
	if kf := s.cfg.Cache.KeyFile; kf != "" {
		keys, err := cache.LoadKeys(kf)
		if err != nil {
			return &SettingError{Setting: "cache.key_file", Value: kf, Err: err}
		}
		copts.Keys = keys
	} else if redisStore != nil {
		s.log.Warn("cache: no cache.key_file; ephemeral keys make a shared Redis useless across replicas and restarts")
	}
	var err error
	if s.cache, err = cache.New(copts); err != nil {
		return &SettingError{Setting: "cache", Err: err}
	}
	s.closers = append(s.closers, func(context.Context) error { return s.cache.Close() })
	// Check asks Redis once through the breaker, so an idle replica
	// notices when Redis is back.
	w.checks = append(w.checks, fhirapi.Check{Name: "cache", Fn: s.cache.Check})
	return nil
}

func (s *Server) newFederation(_ context.Context, w *wiring) error {
	table := federate.IDTableOptions{TTL: s.cfg.IDs.TableTTL, Logger: s.log}
	if w.redis != nil {
		// Every replica resolves the long ids any of them minted.
		table.Store = w.redis
	}
	ids, err := idCodec(s.cfg, table)
	if err != nil {
		return err
	}
	var decider federate.Decider = s.policy
	if w.opts.WrapDecider != nil {
		decider = w.opts.WrapDecider(decider)
	}
	model := match.Default()
	if f := s.cfg.Match.ModelFile; f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("match.model_file: %w", err)
		}
		if model, err = match.ParseModel(b); err != nil {
			return fmt.Errorf("match.model_file %s: %w", f, err)
		}
	}
	// The measures are compiled once, at start: one that does not compile
	// stops the gateway with its file, line and column.
	cat, err := measures.Load()
	if err != nil {
		return fmt.Errorf("measures: %w", err)
	}
	fc := s.cfg.Federation
	fedOpts := federate.Options{
		Sources: w.sources, Mapper: w.mapper, Decider: decider, IDs: ids,
		Deadline: fc.Deadline, SourceTimeout: fc.SourceTimeout, Logger: s.log,
		MatchModel: model, Measures: cat, StatisticsDeadline: fc.StatisticsDeadline,
	}
	if s.cache != nil {
		fedOpts.Cache = s.cache
	}
	w.fed, err = federate.New(fedOpts)
	return err
}

func (s *Server) openAudit(_ context.Context, w *wiring) error {
	ac := s.cfg.Audit
	auditOpts := audit.Options{Path: ac.Log, Logger: s.log, MeterProvider: s.telemetry.MeterProvider(),
		Observer: audit.Observer{Instance: s.instance()}}
	if ac.RedisStream != "" {
		if w.redis == nil {
			return &SettingError{Setting: "audit.redis_stream", Value: ac.RedisStream, Err: errors.New("needs redis.url (or redis.addrs) to be set")}
		}
		auditOpts.Redis, auditOpts.RedisStream = w.redis.Client(), ac.RedisStream
	}
	var err error
	if s.audit, err = audit.New(auditOpts); err != nil {
		return auditLogError(ac.Log, err)
	}
	s.closers = append(s.closers, func(context.Context) error { return s.audit.Close() })
	s.auditor, s.auditSearch = s.audit, s.audit
	w.checks = append(w.checks, fhirapi.Check{Name: "audit", Essential: true, Fn: s.audit.Check})
	return nil
}

// openRepository connects the PostgreSQL audit repository when
// audit.database_url is set, and starts shipping the local log (now the
// spool) to it: auditors' searches read the repository, and requests fail
// closed while the backlog is past audit.max_unshipped.
func (s *Server) openRepository(ctx context.Context, w *wiring) error {
	ac := s.cfg.Audit
	if ac.DatabaseURL == "" {
		return nil
	}
	var err error
	s.repo, err = repository.Open(ctx, repository.Options{URL: ac.DatabaseURL, MaxConns: ac.DatabaseMaxConns,
		Migrate: ac.Migrate, Logger: s.log})
	if err != nil {
		return &SettingError{Setting: "audit.database_url", Err: err}
	}
	s.closers = append(s.closers, func(context.Context) error { s.repo.Close(); return nil })
	shipOpts := repository.ShipperOptions{Repository: s.repo, Path: ac.Log, Log: s.audit,
		Instance: s.instance(), Batch: ac.ShipBatch, MaxUnshipped: ac.MaxUnshipped, Logger: s.log,
		MeterProvider: s.telemetry.MeterProvider()}
	var checkpoints *repository.Checkpointer
	if ac.CheckpointKeyFile != "" {
		key, err := os.ReadFile(ac.CheckpointKeyFile)
		if err != nil {
			return &SettingError{Setting: "audit.checkpoint_key_file", Value: ac.CheckpointKeyFile, Err: err}
		}
		checkpoints, err = repository.NewCheckpointer(ctx, repository.CheckpointerOptions{Repository: s.repo,
			Instance: s.instance(), SignerKey: string(key), Interval: ac.CheckpointInterval, File: ac.CheckpointFile, Logger: s.log})
		if err != nil {
			return &SettingError{Setting: "audit.checkpoint_key_file", Value: ac.CheckpointKeyFile, Err: err}
		}
		shipOpts.Shipped = checkpoints.Shipped
	}
	s.shipper, err = repository.NewShipper(shipOpts)
	if err != nil {
		return &SettingError{Setting: "audit.log", Value: ac.Log, Err: err}
	}
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.shipper.Run(runCtx)
	}()
	s.closers = append(s.closers, func(ctx context.Context) error {
		// One last pass so that a clean shutdown leaves nothing behind
		// (what is left is shipped at the next start).
		stop()
		<-done
		for {
			if n, err := s.shipper.ShipOnce(ctx); n == 0 || err != nil {
				break
			}
		}
		if checkpoints != nil {
			if err := checkpoints.Flush(ctx); err != nil {
				s.log.Warn("audit checkpoints: last checkpoint not signed", slog.Any("error", err))
			}
		}
		return s.shipper.Close()
	})
	if dl := s.cfg.Policy.DecisionLog; dl != "" {
		// The decision log goes to the same repository, so the policy
		// workbench replays every replica's decisions.
		ds, err := repository.NewDecisionShipper(repository.DecisionShipperOptions{Repository: s.repo, Path: dl,
			Instance: s.instance(), Logger: s.log})
		if err != nil {
			return &SettingError{Setting: "policy.decision_log", Value: dl, Err: err}
		}
		dctx, dstop := context.WithCancel(context.WithoutCancel(ctx))
		ddone := make(chan struct{})
		go func() {
			defer close(ddone)
			ds.Run(dctx)
		}()
		s.closers = append(s.closers, func(ctx context.Context) error {
			dstop()
			<-ddone
			for {
				if n, err := ds.ShipOnce(ctx); n == 0 || err != nil {
					return nil
				}
			}
		})
	}
	s.auditor = gatedAuditor{Auditor: s.audit, gate: s.shipper.Gate}
	s.auditSearch = s.repo
	w.checks = append(w.checks, fhirapi.Check{Name: "audit-shipping", Essential: true, Fn: s.shipper.Check},
		fhirapi.Check{Name: "audit-repository", Fn: s.repo.Check})
	return nil
}

// newVerifier builds the bearer token verifier from the auth section.
func (s *Server) newVerifier(context.Context, *wiring) error {
	vopts := AuthOptions(s.cfg.Auth)
	vopts.Logger = s.log
	var err error
	if s.verifier, err = auth.NewVerifier(vopts); err != nil {
		return &SettingError{Setting: "auth", Err: err}
	}
	s.closers = append(s.closers, func(context.Context) error { s.verifier.Close(); return nil })
	return nil
}

// readyStatus is what /readyz reports beside its checks.
func (s *Server) readyStatus(context.Context) map[string]any {
	st := map[string]any{"instance": s.instance(), "policy_revision": s.policy.Revision()}
	if s.shipper != nil {
		st["audit_shipping"] = s.shipper.Status()
	}
	return st
}

// instance names this replica: audit.instance, else the host name.
func (s *Server) instance() string {
	if s.cfg.Audit.Instance != "" {
		return s.cfg.Audit.Instance
	}
	return instanceName()
}

// gatedAuditor refuses to record (so the request releases nothing, 503)
// while gate fails.
type gatedAuditor struct {
	fhirapi.Auditor
	gate func() error
}

func (g gatedAuditor) Record(ctx context.Context, e audit.Entry) (string, error) {
	if err := g.gate(); err != nil {
		return "", err
	}
	return g.Auditor.Record(ctx, e)
}

// newHandler builds the HTTP surface over the federation. The patient
// summary finds one person in several sources through the identifier
// registry: the mapping's entries plus what config adds.
func (s *Server) newHandler(_ context.Context, w *wiring) error {
	auditor := s.auditor
	if w.opts.Auditor != nil {
		auditor = w.opts.Auditor
	}
	registry, err := w.mapper.IdentifierRegistry(s.cfg.Federation.Identifiers...)
	if err != nil {
		return &SettingError{Setting: "federation.identifiers", Err: err}
	}
	linker, err := federate.NewLinker(w.fed, federate.LinkerOptions{Identity: registry, DocumentBytes: s.cfg.Cache.DocumentBytes})
	if err != nil {
		return err
	}
	cfg := s.cfg
	fed, engine, checks := w.fed, w.mapper, w.checks
	s.handler, err = fhirapi.New(fhirapi.Options{
		Operations: append(fhirapi.PatientOperations(linker), fhirapi.DisclosuresOperation(), fhirapi.EvaluateMeasureOperation()),
		Notifier:   audit.NewNotifier(audit.NotifierOptions{URL: cfg.Audit.NotifyURL, Logger: s.log}),
		Federation: fed, Verifier: s.verifier, Auditor: auditor, AuditSearch: s.auditSearch, Mapper: engine, Policy: s.policy, BaseURL: cfg.BaseURL(),
		DefaultCount: cfg.Federation.DefaultCount, MaxCount: cfg.Federation.MaxCount,
		MaxBodyBytes: cfg.Server.MaxBodyBytes, MaxHeaderBytes: cfg.Server.MaxHeaderBytes,
		MaxAttachmentBytes: cfg.Server.MaxAttachmentBytes, RenderedBytes: cfg.Cache.RenderedBytes,
		ToMHP: fhirapi.ToMHPLimits{MaxBundleBytes: cfg.ToMHP.MaxBundleBytes, MaxEntries: cfg.ToMHP.MaxEntries,
			MaxOutputBytes: cfg.ToMHP.MaxOutputBytes, MaxConcurrent: cfg.ToMHP.MaxConcurrent, SpoolDir: cfg.ToMHP.SpoolDir},
		Checks: checks, Status: s.readyStatus, Metrics: s.telemetry.MetricsHandler(), Version: Version, Logger: s.log,
		MatchLimiter:      ratelimit.New(ratelimit.Options{PerMinute: cfg.Match.Rate, Burst: cfg.Match.Burst}),
		MatchDefaultCount: cfg.Match.DefaultCount,
	})
	return err
}

// openConsole serves the console under /console/ beside the FHIR routes,
// over the gateway's own policy engine and audit log; the FHIR routes
// alone when console.disabled. Its statistics page evaluates measures
// through fed, as $evaluate-measure does.
func (s *Server) openConsole(_ context.Context, w *wiring) error {
	fed := w.fed
	s.root = s.handler
	if s.cfg.Console.Disabled {
		return nil
	}
	opts, err := s.consoleOptions()
	if err != nil {
		return err
	}
	if fed.Measures() != nil {
		s.statistics = consoleStatistics{fed: fed}
		opts.Statistics = s.statistics
	}
	if s.console, err = console.New(opts); err != nil {
		return fmt.Errorf("console: %w", err)
	}
	s.root = consoleSplit{console: s.console, fhir: s.handler}
	return nil
}

// consoleSplit sends /console and everything under it to the console and
// every other path, untouched, to the FHIR routes. It is not an
// http.ServeMux on purpose: a ServeMux answers unclean paths ("..", "//")
// with its own redirect before the FHIR routes can refuse them with an
// OperationOutcome.
type consoleSplit struct{ console, fhir http.Handler }

func (h consoleSplit) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if p == console.Prefix || strings.HasPrefix(p, console.Prefix+"/") {
		h.console.ServeHTTP(w, r)
		return
	}
	h.fhir.ServeHTTP(w, r)
}

// consoleOptions reads the console section and the files it names.
func (s *Server) consoleOptions() (console.Options, error) {
	cfg := s.cfg
	c := cfg.Console
	files, err := authz.PolicyFS(cfg.Policy.Dir)
	if err != nil {
		return console.Options{}, fmt.Errorf("console: policy.dir: %w", err)
	}
	opts := console.Options{
		Policy: s.policy, PolicyFiles: files, Auditor: s.auditor, AuditSearch: s.auditSearch, Chain: s.audit,
		BaseURL: cfg.ConsoleURL(), OneTimeLinks: cfg.Auth.Dev || c.OneTimeLink, Org: c.Org, Country: c.Country,
		IdleTimeout: c.IdleTimeout, TraceURL: c.TraceURL, PublishDir: c.PublishDir, SigningAlg: c.SigningAlg,
		Approvals: c.Approvals, StatisticsPurpose: c.StatisticsPurpose, StatisticsWriteTimeout: s.cfg.Federation.StatisticsDeadline + time.Minute, Logger: s.log,
		OIDC: console.OIDC{Issuer: c.OIDC.Issuer, ClientID: c.OIDC.ClientID, Scopes: c.OIDC.Scopes,
			RoleClaim: c.OIDC.RoleClaim, OrgClaim: c.OIDC.OrgClaim, CountryClaim: c.OIDC.CountryClaim},
	}
	if cfg.Policy.DecisionLog != "" {
		opts.Decisions = authz.DecisionFile{Path: cfg.Policy.DecisionLog}
		if s.repo != nil {
			opts.Decisions = s.repo
		}
	}
	if c.OIDC.ClientSecretFile != "" {
		b, err := os.ReadFile(c.OIDC.ClientSecretFile)
		if err != nil {
			return console.Options{}, fmt.Errorf("console.oidc.client_secret_file: %w", err)
		}
		opts.OIDC.ClientSecret = strings.TrimSpace(string(b))
	}
	if c.SigningKeyFile != "" {
		if opts.SigningKey, err = os.ReadFile(c.SigningKeyFile); err != nil {
			return console.Options{}, fmt.Errorf("console.signing_key_file: %w", err)
		}
	}
	return opts, nil
}

// Handler is the gateway's HTTP handler: the FHIR routes and the console.
func (s *Server) Handler() http.Handler { return s.root }

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
		Handler:           s.Handler(),
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
	stopPprof, err := s.startPprof()
	if err != nil {
		_ = s.Close(context.Background())
		return err
	}
	defer stopPprof(context.Background())
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
	err = srv.Shutdown(sctx)
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
// restarts of the demo), with its table of long ids in table's store.
func idCodec(cfg config.Config, table federate.IDTableOptions) (*federate.IDCodec, error) {
	if cfg.IDs.KeyFile == "" {
		if !cfg.Auth.Dev {
			return nil, &SettingError{Setting: "ids.key_file", Err: errors.New("a key of at least 32 random bytes is needed outside the development default (auth.dev)")}
		}
		sum := sha256.Sum256([]byte("mhg development gateway id key; not for real data"))
		return federate.NewIDCodecTable(sum[:], table)
	}
	b, err := os.ReadFile(cfg.IDs.KeyFile)
	if err != nil {
		return nil, &SettingError{Setting: "ids.key_file", Value: cfg.IDs.KeyFile, Err: err}
	}
	c, err := federate.NewIDCodecTable(b, table)
	if err != nil {
		return nil, &SettingError{Setting: "ids.key_file", Value: cfg.IDs.KeyFile, Err: err}
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
