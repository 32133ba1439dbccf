package config

import (
	"time"

	"github.com/migrant-health/mhg/mappings"
)

// Config is the whole gateway configuration. The zero value is not usable;
// start from Default.
type Config struct {
	// Listen is the HTTP listen address (MHG_LISTEN).
	Listen string `yaml:"listen" env:"LISTEN"`
	// PublicURL is the FHIR base URL clients see, used in Bundle links and
	// fullUrls. Empty means http://<Listen>/fhir.
	PublicURL string `yaml:"public_url" env:"PUBLIC_URL"`
	// Server holds HTTP server limits and timeouts.
	Server Server `yaml:"server" envPrefix:"SERVER_"`
	// Sources are the national EHR sources the gateway may ask.
	Sources []Source `yaml:"sources"`
	// Auth says how bearer tokens are verified.
	Auth Auth `yaml:"auth" envPrefix:"AUTH_"`
	// Policy says where the Rego policies come from.
	Policy Policy `yaml:"policy" envPrefix:"POLICY_"`
	// Redis is the shared cache; an empty URL selects the in-process cache.
	Redis Redis `yaml:"redis" envPrefix:"REDIS_"`
	// Cache holds TTLs and keys for whichever cache is in use.
	Cache Cache `yaml:"cache" envPrefix:"CACHE_"`
	// Federation holds fan-out deadlines and limits.
	Federation Federation `yaml:"federation" envPrefix:"FEDERATION_"`
	// Telemetry holds tracing and metrics settings; standard OTEL_* variables
	// are honoured as well.
	Telemetry Telemetry `yaml:"telemetry" envPrefix:"TELEMETRY_"`
	// Audit holds where AuditEvent records go.
	Audit Audit `yaml:"audit" envPrefix:"AUDIT_"`
	// ToMHP bounds the $to-mhp conversion operation.
	ToMHP ToMHP `yaml:"to_mhp" envPrefix:"TO_MHP_"`
	// IDs holds the key that makes gateway resource ids opaque.
	IDs IDs `yaml:"ids" envPrefix:"IDS_"`
	// Log holds logging settings.
	Log Log `yaml:"log" envPrefix:"LOG_"`
	// Console configures the pages for legal teams and auditors under
	// /console/.
	Console Console `yaml:"console" envPrefix:"CONSOLE_"`
	// Match configures Patient/$match.
	Match Match `yaml:"match" envPrefix:"MATCH_"`

	// File is the path the config was read from, "" for defaults only. Set by
	// Load, not read from YAML.
	File string `yaml:"-" env:"-"`
}

// Match configures demographic search (Patient/$match).
type Match struct {
	// ModelFile is a tuned copy of the scoring model, in the shape of
	// gateway/match/model.yaml; relative paths are taken from the config
	// file's directory. Empty means the built-in model.
	ModelFile string `yaml:"model_file" env:"MODEL_FILE"`
	// Rate is how many $match requests one requester (client and
	// organisation) may make per minute, per gateway replica.
	Rate int `yaml:"rate" env:"RATE"`
	// Burst is how many of them may come at once.
	Burst int `yaml:"burst" env:"BURST"`
	// DefaultCount is how many candidates an answer holds at most when the
	// request gives no count; a request may ask for up to
	// federation.max_count.
	DefaultCount int `yaml:"default_count" env:"DEFAULT_COUNT"`
}

// Server holds HTTP server limits and timeouts.
type Server struct {
	// ReadHeaderTimeout bounds reading request headers.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout" env:"READ_HEADER_TIMEOUT"`
	// ReadTimeout bounds reading a whole request.
	ReadTimeout time.Duration `yaml:"read_timeout" env:"READ_TIMEOUT"`
	// WriteTimeout bounds writing a response, measured from the end of the
	// request headers.
	WriteTimeout time.Duration `yaml:"write_timeout" env:"WRITE_TIMEOUT"`
	// IdleTimeout bounds keep-alive idle connections.
	IdleTimeout time.Duration `yaml:"idle_timeout" env:"IDLE_TIMEOUT"`
	// ShutdownTimeout bounds the graceful shutdown on SIGTERM.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout" env:"SHUTDOWN_TIMEOUT"`
	// MaxBodyBytes is the largest request body accepted (413 above it).
	MaxBodyBytes int64 `yaml:"max_body_bytes" env:"MAX_BODY_BYTES"`
	// MaxHeaderBytes is the largest request header block accepted.
	MaxHeaderBytes int `yaml:"max_header_bytes" env:"MAX_HEADER_BYTES"`
	// MaxAttachmentBytes is the largest attachment the $attachment route
	// serves (413 above it).
	MaxAttachmentBytes int64 `yaml:"max_attachment_bytes" env:"MAX_ATTACHMENT_BYTES"`
	// PprofListen is a loopback address (127.0.0.1:6060, [::1]:6060,
	// localhost:6060) where Go's profiler answers under /debug/pprof/,
	// for operators on the host or through a port-forward. Empty, the
	// default, serves no profiler; any other host is refused.
	PprofListen string `yaml:"pprof_listen" env:"PPROF_LISTEN"`
}

// Source kinds.
const (
	// KindFHIR is a national FHIR REST server.
	KindFHIR = "fhir"
	// KindBundle is a directory of FHIR Bundles and NDJSON files.
	KindBundle = "bundle"
)

// How a source is searched by demographic traits (Source.PatientMatch).
const (
	// PatientMatchSearch: standard searches on family, given and
	// birthdate, the candidates scored by the gateway.
	PatientMatchSearch = "search"
	// PatientMatchPhonetic: as PatientMatchSearch, with the Patient
	// phonetic parameter, which the source matches across spellings.
	PatientMatchPhonetic = "phonetic"
	// PatientMatchOperation: the source answers Patient/$match (IHE PDQm
	// ITI-119) itself; the gateway forwards the request.
	PatientMatchOperation = "operation"
)

// Source is one national EHR source.
type Source struct {
	// ID names the source in config, logs, metrics and gateway ids:
	// lower-case letters, digits and '-', at most 16 characters.
	ID string `yaml:"id"`
	// Country is the ISO 3166-1 alpha-2 code of the country that holds it.
	Country string `yaml:"country"`
	// Profile is the national profile id its resources follow (de-basis,
	// us-core, ...), as known to the mapping engine.
	Profile string `yaml:"profile"`
	// Kind is "fhir" or "bundle".
	Kind string `yaml:"kind"`
	// BaseURL is the FHIR base of a "fhir" source.
	BaseURL string `yaml:"base_url"`
	// Dir is the directory of a "bundle" source; relative paths are taken
	// from the config file's directory.
	Dir string `yaml:"dir"`
	// Timeout bounds one call to the source, retries included. Zero means
	// the federation default.
	Timeout time.Duration `yaml:"timeout"`
	// Retries is how many times an idempotent GET is retried after a
	// transient failure. Zero means none.
	Retries int `yaml:"retries"`
	// MaxPages bounds how many Bundle "next" links one search follows.
	// Zero means 10.
	MaxPages int `yaml:"max_pages"`
	// MaxResponseBytes bounds one response body. Zero means 16 MiB.
	MaxResponseBytes int64 `yaml:"max_response_bytes"`
	// Auth is how the gateway authenticates to a "fhir" source.
	Auth SourceAuth `yaml:"auth"`
	// Breaker tunes the circuit breaker of a "fhir" source.
	Breaker Breaker `yaml:"breaker"`
	// RateLimit caps how fast the gateway calls a "fhir" source, across
	// all requests of this replica, so that the gateway does not cause the
	// throttling it would then have to wait out. Zero means no limit.
	RateLimit RateLimit `yaml:"rate_limit"`
	// PatientMatch says how Patient/$match asks the source: "search"
	// (standard name and birthdate searches), "phonetic" (the source
	// supports the phonetic parameter) or "operation" (the source answers
	// Patient/$match). Empty means "search" for a "fhir" source and
	// "phonetic" for a "bundle" source, which implements it.
	PatientMatch string `yaml:"patient_match"`
}

// SourceAuth is how the gateway authenticates to a national FHIR server.
type SourceAuth struct {
	// Type is "" (none), "bearer" (a static token) or "basic".
	Type string `yaml:"type"`
	// TokenFile holds the bearer token, read at start.
	TokenFile string `yaml:"token_file"`
	// Username is the user name of "basic".
	Username string `yaml:"username"`
	// PasswordFile holds the password of "basic", read at start.
	PasswordFile string `yaml:"password_file"`
}

// RateLimit is a token bucket: PerSecond calls a second on average, Burst
// at once.
type RateLimit struct {
	// PerSecond is how many calls (HTTP requests, pages and retries
	// included) a second the source gets on average. Zero means no limit.
	PerSecond float64 `yaml:"per_second"`
	// Burst is how many calls may go at once. Zero means
	// max(1, ceil(per_second)).
	Burst int `yaml:"burst"`
}

// Breaker tunes a source's circuit breaker.
type Breaker struct {
	// Failures is how many consecutive failures open the breaker. Zero
	// means 5.
	Failures int `yaml:"failures"`
	// OpenFor is how long the breaker stays open before one trial call.
	// Zero means 30s.
	OpenFor time.Duration `yaml:"open_for"`
}

// Auth says how bearer tokens are verified.
type Auth struct {
	// Dev selects the development signing key (a local key file that `mhg
	// token` also uses). Never set it in a real deployment.
	Dev bool `yaml:"dev" env:"DEV"`
	// DevKeyFile is where the development key lives; created when missing.
	DevKeyFile string `yaml:"dev_key_file" env:"DEV_KEY_FILE"`
	// Issuer is the required "iss" claim.
	Issuer string `yaml:"issuer" env:"ISSUER"`
	// Audience is the required "aud" claim, normally the gateway's FHIR base.
	Audience string `yaml:"audience" env:"AUDIENCE"`
	// JWKSFile is a local JSON Web Key Set with the issuer's public keys.
	JWKSFile string `yaml:"jwks_file" env:"JWKS_FILE"`
	// JWKSURL is the issuer's JWKS endpoint, refreshed in the background.
	JWKSURL string `yaml:"jwks_url" env:"JWKS_URL"`
	// ClockSkew is the tolerance on exp, nbf and iat. At most 5m.
	ClockSkew time.Duration `yaml:"clock_skew" env:"CLOCK_SKEW"`
	// MaxTokenAge bounds how long a token may be valid in total (exp-iat).
	// Zero means 1h, which is what SMART Backend Services allows at most.
	MaxTokenAge time.Duration `yaml:"max_token_age" env:"MAX_TOKEN_AGE"`
	// TokenCacheEntries bounds the verified tokens remembered (by their
	// SHA-256, until exp, while the key that verified them is still in
	// the key set), so that a client reusing its access token is not
	// verified in full on every request. Zero means 10000; -1 verifies
	// every token in full.
	TokenCacheEntries int `yaml:"token_cache_entries" env:"TOKEN_CACHE_ENTRIES"`
}

// Policy says where the Rego policies come from.
type Policy struct {
	// Dir is a directory in OPA bundle layout (Rego, data.json files, an
	// optional .manifest). Empty means the policies built into the binary.
	Dir string `yaml:"dir" env:"DIR"`
	// BundleURL is an OPA bundle server URL polled for new revisions;
	// it takes precedence over Dir.
	BundleURL string `yaml:"bundle_url" env:"BUNDLE_URL"`
	// Watch reloads Dir when files change.
	Watch bool `yaml:"watch" env:"WATCH"`
	// PollInterval is how often BundleURL is polled.
	PollInterval time.Duration `yaml:"poll_interval" env:"POLL_INTERVAL"`
	// DecisionLog is a JSONL file for OPA-shaped decision log entries;
	// empty means the structured log only.
	DecisionLog string `yaml:"decision_log" env:"DECISION_LOG"`
	// MemoEntries bounds the decisions reused for an identical policy
	// input under the same revision (until the next agreement or consent
	// validity boundary, one minute at most). Zero means 4096; -1 turns
	// the memo off.
	MemoEntries int `yaml:"memo_entries" env:"MEMO_ENTRIES"`
}

// Redis is the shared cache.
type Redis struct {
	// URL is a redis:// or rediss:// URL (MHG_REDIS_URL). Empty selects the
	// in-process cache.
	URL string `yaml:"url" env:"URL"`
	// Addrs lists several addresses for Cluster or Sentinel; with
	// MasterName set it is Sentinel, otherwise Cluster.
	Addrs []string `yaml:"addrs" env:"ADDRS" envSeparator:","`
	// MasterName is the Sentinel master name.
	MasterName string `yaml:"master_name" env:"MASTER_NAME"`
	// Timeout bounds each Redis command; the request goes on without the
	// cache when it expires. Zero means 50ms.
	Timeout time.Duration `yaml:"timeout" env:"TIMEOUT"`
}

// Cache holds TTLs and keys for the cache.
type Cache struct {
	// Disabled turns caching off entirely.
	Disabled bool `yaml:"disabled" env:"DISABLED"`
	// MaxBytes bounds the in-process cache. Zero means 256 MiB.
	MaxBytes int64 `yaml:"max_bytes" env:"MAX_BYTES"`
	// ResourceTTL is how long a mapped resource is kept.
	ResourceTTL time.Duration `yaml:"resource_ttl" env:"RESOURCE_TTL"`
	// SearchTTL is how long a search result set is kept.
	SearchTTL time.Duration `yaml:"search_ttl" env:"SEARCH_TTL"`
	// ResolveTTL is how long an identifier resolution is kept.
	ResolveTTL time.Duration `yaml:"resolve_ttl" env:"RESOLVE_TTL"`
	// NegativeTTL is how long a "not found" is kept.
	NegativeTTL time.Duration `yaml:"negative_ttl" env:"NEGATIVE_TTL"`
	// KeyFile holds the 32-byte HMAC key for cache keys and the AES-256-GCM
	// keys for values (see the cache package). Empty means an ephemeral key,
	// which only suits a single in-process replica.
	KeyFile string `yaml:"key_file" env:"KEY_FILE"`
	// LocalTTL, with Redis, keeps an in-process copy of what this replica
	// reads from Redis for this long (at most). Every deletion
	// (forget-patient, purges) is published on Redis and empties every
	// replica's copy. Zero means no copy: every read asks Redis.
	LocalTTL time.Duration `yaml:"local_ttl" env:"LOCAL_TTL"`
	// RenderedBytes bounds the FHIR JSON kept of released resources,
	// under the content hash of their exact released form, so that a
	// resource released again unchanged is not marshalled again. It never
	// stands in for a source, so Disabled does not turn it off. Zero
	// means 32 MiB; -1 marshals every release afresh.
	RenderedBytes int64 `yaml:"rendered_bytes" env:"RENDERED_BYTES"`
	// DocumentBytes bounds the rendered Patient/$summary documents kept,
	// each reused (for five minutes at most) only for a request whose
	// released resources, policy decisions, requester, language, base
	// URL and profile are exactly those it was rendered from; every
	// request is still resolved, decided on and audited, and one with
	// Cache-Control: no-cache is rendered afresh. It never stands in for
	// a source, so Disabled does not turn it off. Zero means 16 MiB; -1
	// renders every summary afresh.
	DocumentBytes int64 `yaml:"document_bytes" env:"DOCUMENT_BYTES"`
}

// Federation holds fan-out deadlines and limits.
type Federation struct {
	// Deadline bounds a whole request's fan-out.
	Deadline time.Duration `yaml:"deadline" env:"DEADLINE"`
	// SourceTimeout is the per-source default when a source sets none.
	SourceTimeout time.Duration `yaml:"source_timeout" env:"SOURCE_TIMEOUT"`
	// StatisticsDeadline bounds a whole statistics evaluation
	// (Measure/$evaluate-measure), every permitted source read in parallel;
	// a source not done by then is named in the report as missing.
	StatisticsDeadline time.Duration `yaml:"statistics_deadline" env:"STATISTICS_DEADLINE"`
	// MaxCount is the largest _count a client may ask for.
	MaxCount int `yaml:"max_count" env:"MAX_COUNT"`
	// DefaultCount is the page size when the client gives no _count.
	DefaultCount int `yaml:"default_count" env:"DEFAULT_COUNT"`
	// Identifiers add to (or, by id, replace) the identifier systems the
	// patient summary may use to find one person in several sources. The
	// defaults come from the mapping registry: passports cross borders,
	// national and local identifiers stay domestic, status-revealing ones
	// are never used.
	Identifiers []mappings.IdentifierSystem `yaml:"identifiers"`
}

// Telemetry holds tracing and metrics settings.
type Telemetry struct {
	// ServiceName is the OpenTelemetry service.name.
	ServiceName string `yaml:"service_name" env:"SERVICE_NAME"`
	// TracesExporter is "none", "console" or "otlp"; OTEL_TRACES_EXPORTER
	// overrides it.
	TracesExporter string `yaml:"traces_exporter" env:"TRACES_EXPORTER"`
	// OTLPEndpoint is the collector endpoint; OTEL_EXPORTER_OTLP_ENDPOINT
	// overrides it.
	OTLPEndpoint string `yaml:"otlp_endpoint" env:"OTLP_ENDPOINT"`
	// OTLPProtocol is "grpc" or "http/protobuf".
	OTLPProtocol string `yaml:"otlp_protocol" env:"OTLP_PROTOCOL"`
	// SampleRatio is the share of root traces sampled, 0..1.
	SampleRatio float64 `yaml:"sample_ratio" env:"SAMPLE_RATIO"`
}

// Audit holds where AuditEvent records go.
type Audit struct {
	// Log is the append-only, hash-chained JSONL file (MHG_AUDIT_LOG).
	Log string `yaml:"log" env:"LOG"`
	// RedisStream, when set, also appends each record to this Redis
	// Stream on the configured Redis.
	RedisStream string `yaml:"redis_stream" env:"REDIS_STREAM"`
	// NotifyURL, when set, receives a JSON POST for every disclosure a
	// policy says someone must hear of (break-the-glass): the AuditEvent
	// id, targets and requester, never patient data. Every such
	// notification is logged either way.
	NotifyURL string `yaml:"notify_url" env:"NOTIFY_URL"`
	// DatabaseURL is the PostgreSQL audit repository
	// (MHG_AUDIT_DATABASE_URL; sslmode, sslrootcert, sslcert and sslkey
	// set TLS). Every replica ships its records there and auditors'
	// searches read it; the local log becomes the spool. Empty means the
	// local log alone.
	DatabaseURL string `yaml:"database_url" env:"DATABASE_URL"`
	// DatabaseMaxConns bounds the repository's connection pool. Zero
	// means the larger of 4 and the number of CPUs.
	DatabaseMaxConns int32 `yaml:"database_max_conns" env:"DATABASE_MAX_CONNS"`
	// Migrate applies the repository's schema migrations at start-up
	// (under a lock, so replicas starting together migrate once). False
	// means `mhg audit migrate` has been run.
	Migrate bool `yaml:"migrate" env:"MIGRATE"`
	// Instance names this replica's chain in the repository; it must stay
	// the same for the same local log across restarts, and differ between
	// replicas. Empty means the host name.
	Instance string `yaml:"instance" env:"INSTANCE"`
	// ShipBatch is the most records one insert ships. Zero means 500.
	ShipBatch int `yaml:"ship_batch" env:"SHIP_BATCH"`
	// MaxUnshipped bounds the records written locally but not yet in the
	// repository: past it the gateway fails closed (503, /readyz not
	// ready) until shipping catches up. Zero means 100000.
	MaxUnshipped int `yaml:"max_unshipped" env:"MAX_UNSHIPPED"`
	// CheckpointKeyFile holds the note signer key (`mhg audit keygen`)
	// that signs this replica's Merkle checkpoints in the repository.
	// Empty means no checkpoints: the chains alone, which cannot show a
	// cut tail.
	CheckpointKeyFile string `yaml:"checkpoint_key_file" env:"CHECKPOINT_KEY_FILE"`
	// CheckpointFile, when set, also receives every signed checkpoint
	// (appended), a second copy for an independent party to keep.
	CheckpointFile string `yaml:"checkpoint_file" env:"CHECKPOINT_FILE"`
	// CheckpointInterval is the least time between two checkpoints. Zero
	// means 10s.
	CheckpointInterval time.Duration `yaml:"checkpoint_interval" env:"CHECKPOINT_INTERVAL"`
}

// ToMHP bounds POST $to-mhp, which converts whatever a client sends: no
// request may use up the gateway.
type ToMHP struct {
	// MaxBundleBytes is the largest Bundle accepted (413 above it). A
	// Bundle is streamed through temporary files, so memory stays flat
	// whatever its size; a single resource, a Parameters body and each
	// Bundle entry are held whole and bounded by server.max_body_bytes.
	MaxBundleBytes int64 `yaml:"max_bundle_bytes" env:"MAX_BUNDLE_BYTES"`
	// MaxEntries is the most entries one Bundle may hold (413 above).
	MaxEntries int `yaml:"max_entries" env:"MAX_ENTRIES"`
	// MaxOutputBytes bounds the converted answer (413 above it).
	MaxOutputBytes int64 `yaml:"max_output_bytes" env:"MAX_OUTPUT_BYTES"`
	// MaxConcurrent is how many conversions run at once; more get 429.
	MaxConcurrent int `yaml:"max_concurrent" env:"MAX_CONCURRENT"`
	// SpoolDir holds the temporary files of conversions in progress,
	// removed as their request ends. Empty means the system's temporary
	// directory.
	SpoolDir string `yaml:"spool_dir" env:"SPOOL_DIR"`
}

// IDs holds the key that makes gateway resource ids opaque.
type IDs struct {
	// KeyFile holds at least 32 random bytes. Every replica must share it,
	// or ids differ between replicas. Empty means a key derived for the
	// development default, which is only fit for a demo.
	KeyFile string `yaml:"key_file" env:"KEY_FILE"`
	// TableTTL is how long the id table keeps the upstream id behind a
	// long gateway id (an upstream id too long to seal into 64
	// characters) after the id was last minted; every search or read
	// that returns the resource mints it again. The table lives in Redis
	// when one is configured, else in-process. Zero means 720h (30 days).
	TableTTL time.Duration `yaml:"table_ttl" env:"TABLE_TTL"`
}

// Log holds logging settings.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level" env:"LEVEL"`
	// Format is "json" or "text".
	Format string `yaml:"format" env:"FORMAT"`
}

// Console configures the console (policy workbench and audit desk).
type Console struct {
	// Disabled turns the console off (404 under /console/).
	Disabled bool `yaml:"disabled" env:"DISABLED"`
	// OIDC is the organisation's identity provider. An empty issuer
	// leaves the one-time sign-in link of the development default as the
	// only way in (with auth.dev or one_time_link).
	OIDC ConsoleOIDC `yaml:"oidc" envPrefix:"OIDC_"`
	// OneTimeLink prints a one-time sign-in link at start-up even outside
	// the development default. False: only with auth.dev.
	OneTimeLink bool `yaml:"one_time_link" env:"ONE_TIME_LINK"`
	// Org is the organisation of console users whose token names none.
	Org string `yaml:"org" env:"ORG"`
	// Country is the country of console users whose token names none.
	Country string `yaml:"country" env:"COUNTRY"`
	// IdleTimeout ends an unused session. Zero means 30m.
	IdleTimeout time.Duration `yaml:"idle_timeout" env:"IDLE_TIMEOUT"`
	// TraceURL links AuditEvents to their traces; {trace_id} is replaced
	// (http://jaeger:16686/trace/{trace_id}). Empty shows the id alone.
	TraceURL string `yaml:"trace_url" env:"TRACE_URL"`
	// PublishDir receives published drafts (a patch and, with a signing
	// key, a signed bundle). Empty means .mhg/published.
	PublishDir string `yaml:"publish_dir" env:"PUBLISH_DIR"`
	// SigningKeyFile holds the key that signs published bundles (PEM
	// private key, or an HMAC secret). Empty: no bundle, only the patch.
	SigningKeyFile string `yaml:"signing_key_file" env:"SIGNING_KEY_FILE"`
	// SigningAlg is the algorithm of the signing key; empty means RS256.
	SigningAlg string `yaml:"signing_alg" env:"SIGNING_ALG"`
	// Approvals is how many different legal users approve a draft before
	// it is published; 0 or 1 is the author alone.
	Approvals int `yaml:"approvals" env:"APPROVALS"`
	// StatisticsPurpose is the purpose of use (an HL7 v3 ActReason code)
	// the statistics page asks under; empty means PUBHLTH.
	StatisticsPurpose string `yaml:"statistics_purpose" env:"STATISTICS_PURPOSE"`
}

// ConsoleOIDC is the console's identity provider.
type ConsoleOIDC struct {
	// Issuer is the provider's issuer URL.
	Issuer string `yaml:"issuer" env:"ISSUER"`
	// ClientID is the console's client id at the provider.
	ClientID string `yaml:"client_id" env:"CLIENT_ID"`
	// ClientSecretFile holds the client secret; empty is a public client
	// (PKCE alone).
	ClientSecretFile string `yaml:"client_secret_file" env:"CLIENT_SECRET_FILE"`
	// Scopes are asked for besides openid; empty means profile and email.
	Scopes []string `yaml:"scopes" env:"SCOPES" envSeparator:","`
	// RoleClaim names the claim with the console roles (legal, auditor);
	// empty means roles. A dotted name reaches into objects.
	RoleClaim string `yaml:"role_claim" env:"ROLE_CLAIM"`
	// OrgClaim names the claim with the user's organisation; empty means org.
	OrgClaim string `yaml:"org_claim" env:"ORG_CLAIM"`
	// CountryClaim names the claim with the user's country; empty means country.
	CountryClaim string `yaml:"country_claim" env:"COUNTRY_CLAIM"`
}
