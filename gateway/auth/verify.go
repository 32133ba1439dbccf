package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// Limits the verifier applies whatever the configuration says.
const (
	// MaxClockSkew caps VerifierOptions.ClockSkew.
	MaxClockSkew = 5 * time.Minute
	// DefaultMaxTokenAge is used when VerifierOptions.MaxTokenAge is zero; it
	// is the most SMART Backend Services allows for an access token.
	DefaultMaxTokenAge = time.Hour
)

// Defaults for VerifierOptions' zero values.
const (
	defaultRefreshInterval    = 15 * time.Minute
	defaultUnknownKeyInterval = 30 * time.Second
	// jwksFetchBudget bounds one JWKS fetch. It also bounds how long a
	// request with an unknown kid may wait for the refresh rate limiter,
	// because jwkset uses one deadline for both.
	jwksFetchBudget = 5 * time.Second
)

// acceptedAlgs are the only JWS algorithms verified. Everything else,
// "none" and the HMAC family included, is refused before a key is chosen,
// which is what defeats the alg-confusion forgeries (HS256 keyed with the
// public key's bytes).
var acceptedAlgs = []string{"RS256", "ES256"}

// VerifierOptions say which tokens a Verifier accepts: from which issuer,
// for which audience, signed by which keys. Issuer, Audience and at least
// one key source (JWKSFile, JWKSURL, DevKeyFile) are required; every other
// zero value is a sensible default. Mint signs tokens that a Verifier built
// from the same options accepts.
type VerifierOptions struct {
	// Issuer is the required "iss" claim. Required.
	Issuer string
	// Audience is the required "aud" claim, normally the gateway's FHIR
	// base. Required.
	Audience string
	// JWKSFile is a local JSON Web Key Set with the issuer's public keys,
	// read once. Empty means none.
	JWKSFile string
	// JWKSURL is the issuer's JWKS endpoint, fetched at start and then
	// refreshed in the background and on unknown kids. Empty means none.
	JWKSURL string
	// DevKeyFile is the development signing key (created when missing):
	// its public half verifies, and Mint signs with it. Empty means no
	// development key: Mint refuses with ErrNotDevelopment. Never set it
	// in a real deployment.
	DevKeyFile string
	// ClockSkew is the tolerance on exp, nbf and iat, capped at
	// MaxClockSkew. Zero means none; negative is an error.
	ClockSkew time.Duration
	// MaxTokenAge bounds how long a token may be valid in total
	// (exp-iat). Zero means DefaultMaxTokenAge; negative is an error.
	MaxTokenAge time.Duration

	// HTTPClient fetches JWKSURL. Nil means a client with a
	// 10s timeout over http.DefaultTransport. Either way responses larger
	// than 1 MiB are refused.
	HTTPClient *http.Client
	// RefreshInterval is how often the JWKS URL is fetched in the
	// background, so rotated-out keys stop verifying. Zero means 15m.
	RefreshInterval time.Duration
	// UnknownKeyRefreshInterval is the least time between two fetches
	// caused by a token whose kid is not in the key set, so that a flood
	// of made-up kids cannot turn the gateway against the issuer. The
	// first such token after a rotation triggers a fetch at once. Zero
	// means 30s.
	UnknownKeyRefreshInterval time.Duration
	// InsecureJWKSURL allows a plain http JWKS URL to a host that is not
	// loopback. The zero value refuses it: whoever can tamper with that
	// traffic could hand the gateway their own signing key.
	InsecureJWKSURL bool
	// Logger receives JWKS fetch failures (the URL and the error). Nil
	// means slog.Default().
	Logger *slog.Logger
	// Now is the clock for exp, nbf and iat. Nil means time.Now.
	Now func() time.Time
	// TokenCacheEntries bounds the verified tokens remembered (by their
	// SHA-256, until exp, while the key that verified them is still in
	// the key set; see tokenCache), so a client reusing its token is not
	// verified in full on every request. Zero means
	// DefaultTokenCacheEntries; negative verifies every token in full.
	TokenCacheEntries int
}

// Verifier checks bearer tokens and turns their claims into a Requester.
// It is safe for concurrent use. Call Close when done with it.
type Verifier struct {
	keys   jwkset.Storage
	parser *jwt.Parser
	now    func() time.Time
	skew   time.Duration
	maxAge time.Duration
	tokens *tokenCache // nil: every token verified in full
	cancel context.CancelFunc
}

// NewVerifier builds a Verifier from opts. Keys come from every source
// given, together: opts.JWKSFile (read once), opts.JWKSURL (fetched now,
// then refreshed in the background and on unknown kids) and the public half
// of the development key in opts.DevKeyFile (created if missing, so that
// `mhg token` and the server agree on it).
//
// If the first JWKS fetch fails, NewVerifier still succeeds (the issuer
// may come up later) and logs the failure; Check reports whether any key
// is usable.
func NewVerifier(opts VerifierOptions) (*Verifier, error) {
	switch {
	case opts.Issuer == "":
		return nil, errors.New("auth: the expected token issuer is needed")
	case opts.Audience == "":
		return nil, errors.New("auth: the expected token audience is needed")
	case opts.ClockSkew < 0:
		return nil, errors.New("auth: the clock skew cannot be negative")
	case opts.MaxTokenAge < 0:
		return nil, errors.New("auth: the max token age cannot be negative")
	case opts.DevKeyFile == "" && opts.JWKSFile == "" && opts.JWKSURL == "":
		return nil, errors.New("auth: no keys: give a JWKS file, a JWKS URL or the development key")
	}
	skew := min(opts.ClockSkew, MaxClockSkew)
	maxAge := maxTokenAge(opts)
	now := opts.Now
	if now == nil {
		now = time.Now
	}

	given := jwkset.NewMemoryStorage()
	seen := map[string]bool{}
	if opts.JWKSFile != "" {
		if err := readJWKSFile(opts.JWKSFile, given, seen); err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
	}
	if opts.DevKeyFile != "" {
		if _, err := addDevKey(opts.DevKeyFile, given, seen); err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	v := &Verifier{
		keys:   given,
		now:    now,
		skew:   skew,
		maxAge: maxAge,
		tokens: newTokenCache(opts.TokenCacheEntries),
		cancel: cancel,
		parser: jwt.NewParser(
			jwt.WithValidMethods(acceptedAlgs),
			jwt.WithIssuer(opts.Issuer),
			jwt.WithAudience(opts.Audience),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(skew),
			jwt.WithTimeFunc(now),
			jwt.WithStrictDecoding(),
		),
	}
	if opts.JWKSURL != "" {
		kf, err := remoteKeys(ctx, opts.JWKSURL, given, opts)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("auth: %w", err)
		}
		v.keys = kf.Storage()
	}
	return v, nil
}

// maxTokenAge is opts.MaxTokenAge, DefaultMaxTokenAge when zero.
func maxTokenAge(opts VerifierOptions) time.Duration {
	if opts.MaxTokenAge == 0 {
		return DefaultMaxTokenAge
	}
	return opts.MaxTokenAge
}

// remoteKeys builds the refreshing key storage for a JWKS URL on top of
// the keys already known. keyfunc wires jwkset's HTTP storage, background
// refresh and unknown-kid refresh limiter.
func remoteKeys(ctx context.Context, jwksURL string, given jwkset.Storage, opts VerifierOptions) (keyfunc.Keyfunc, error) {
	if err := checkJWKSURL(jwksURL, opts.InsecureJWKSURL); err != nil {
		return nil, err
	}
	client := &http.Client{Timeout: 10 * time.Second}
	if opts.HTTPClient != nil {
		c := *opts.HTTPClient // a copy: the caller's client is not changed
		client = &c
	}
	client.Transport = limitedTransport{base: client.Transport, limit: maxJWKSBytes}
	refresh := opts.RefreshInterval
	if refresh <= 0 {
		refresh = defaultRefreshInterval
	}
	unknown := opts.UnknownKeyRefreshInterval
	if unknown <= 0 {
		unknown = defaultUnknownKeyInterval
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	startWithoutKeys := true
	return keyfunc.NewDefaultOverrideCtx(ctx, []string{jwksURL}, keyfunc.Override{
		Client:                    client,
		Given:                     given,
		HTTPTimeout:               jwksFetchBudget,
		NoErrorReturnFirstHTTPReq: &startWithoutKeys,
		RateLimitWaitMax:          jwksFetchBudget,
		RefreshInterval:           refresh,
		RefreshUnknownKID:         rate.NewLimiter(rate.Every(unknown), 1),
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(ctx context.Context, err error) {
				logger.WarnContext(ctx, "auth: JWKS fetch failed", "jwks_url", u, "error", err)
			}
		},
	})
}

// Close stops the background JWKS refresh, if any. It is safe to call
// more than once.
func (v *Verifier) Close() { v.cancel() }

// Check reports an error when no key in the key set can verify tokens
// (for instance the JWKS URL has never been reached), for readiness
// probes.
func (v *Verifier) Check(ctx context.Context) error {
	all, err := v.keys.KeyReadAll(ctx)
	if err != nil {
		return fmt.Errorf("auth: key set: %w", err)
	}
	for _, j := range all {
		if jwkUsable(j.Marshal()) != "" || j.Marshal().KID == "" {
			continue
		}
		k := publicOf(j.Key())
		if keyFits("ES256", k) == "" || keyFits("RS256", k) == "" {
			return nil
		}
	}
	return errors.New("auth: no usable RS256 or ES256 key with a kid in the key set")
}

// Verify checks rawToken (a compact JWS, as BearerToken returns it) and
// returns the Requester its claims describe.
//
// Checks: alg is RS256 or ES256; the header names a kid found in the key
// set (refreshing a JWKS URL once, rate-limited, when it is not) whose
// type, curve or size, alg and use fit; no "crit" header; the signature;
// iss equals the configured issuer; aud contains the configured audience
// (string or array); exp is present and not past, nbf and iat not ahead,
// each with the clock skew; exp-iat is at most the maximum token age (or,
// without iat, exp is no further ahead than that age plus the skew); then
// the gateway claims (country shape, purpose_of_use forms) and a non-empty
// sub.
//
// A token verified before is answered from the token cache (see
// VerifierOptions.TokenCacheEntries) until its exp, while the key that
// verified it is still in the key set.
//
// An empty rawToken returns ErrNoToken. Every refusal is a *TokenError
// matching ErrInvalidToken, or ErrInsufficient when only sub is missing.
// ctx bounds a JWKS refresh the token may cause.
func (v *Verifier) Verify(ctx context.Context, rawToken string) (Requester, error) {
	if rawToken == "" {
		return Requester{}, ErrNoToken
	}
	if len(rawToken) > MaxTokenBytes {
		return Requester{}, refuse(ReasonMalformed, "token too long")
	}
	sum := sha256.Sum256([]byte(rawToken))
	if r, ok := v.cachedRequester(ctx, sum, v.now()); ok {
		return r, nil
	}
	var (
		c         tokenClaims
		keyCalled bool
		keyErr    *TokenError
		kid       string
		usedKey   any
	)
	_, err := v.parser.ParseWithClaims(rawToken, &c, func(t *jwt.Token) (any, error) {
		keyCalled = true
		key, te := v.keyFor(ctx, t)
		if te != nil {
			keyErr = te
			return nil, te
		}
		kid, _ = t.Header[jwkset.HeaderKID].(string)
		usedKey = key
		return key, nil
	})
	if err != nil {
		return Requester{}, classify(err, &c, keyCalled, keyErr)
	}
	exp := c.ExpiresAt.Time
	if c.IssuedAt != nil {
		if exp.Sub(c.IssuedAt.Time) > v.maxAge {
			return Requester{}, refuse(ReasonLifetime, "exp-iat exceeds the maximum token age")
		}
	} else if exp.Sub(v.now()) > v.maxAge+v.skew {
		return Requester{}, refuse(ReasonLifetime, "no iat, and exp is further ahead than the maximum token age")
	}
	r, te := c.requester()
	if te != nil {
		return Requester{}, te
	}
	v.remember(sum, r, kid, usedKey, exp, v.now())
	return r, nil
}

// keyFor picks the verification key for t, after jwt has checked that
// t's alg is one of acceptedAlgs.
func (v *Verifier) keyFor(ctx context.Context, t *jwt.Token) (any, *TokenError) {
	if _, ok := t.Header["crit"]; ok {
		// RFC 7515 4.1.11: extensions we do not understand must fail.
		return nil, refuse(ReasonHeader, "crit header present")
	}
	kidV, ok := t.Header[jwkset.HeaderKID]
	if !ok {
		return nil, refuse(ReasonMissingKeyID, "")
	}
	kid, ok := kidV.(string)
	if !ok {
		return nil, refuse(ReasonHeader, "kid is not a string")
	}
	if kid == "" {
		return nil, refuse(ReasonMissingKeyID, "")
	}
	jwk, err := v.keys.KeyRead(ctx, kid)
	if err != nil {
		// The kid is the client's string: it is not repeated.
		return nil, refuse(ReasonUnknownKey, "kid not in the key set")
	}
	m := jwk.Marshal()
	if why := jwkUsable(m); why != "" {
		return nil, refuse(ReasonKeyMismatch, why)
	}
	alg := t.Method.Alg()
	if m.ALG != "" && string(m.ALG) != alg {
		return nil, refuse(ReasonKeyMismatch, "key is for another alg")
	}
	key := publicOf(jwk.Key())
	if why := keyFits(alg, key); why != "" {
		return nil, refuse(ReasonKeyMismatch, why)
	}
	return key, nil
}

// classify turns a golang-jwt error into a TokenError. The jwt error text
// itself is dropped: some of it quotes the header (the alg name).
func classify(err error, c *tokenClaims, keyCalled bool, keyErr *TokenError) *TokenError {
	with := func(r Reason, detail string, cause error) *TokenError {
		return &TokenError{Reason: r, Detail: detail, cause: cause}
	}
	switch {
	case keyErr != nil:
		return keyErr
	case errors.Is(err, jwt.ErrTokenMalformed):
		return with(ReasonMalformed, "not a well-formed JWS", jwt.ErrTokenMalformed)
	case !keyCalled && (errors.Is(err, jwt.ErrTokenSignatureInvalid) || errors.Is(err, jwt.ErrTokenUnverifiable)):
		// jwt refuses an alg outside acceptedAlgs (or one it does not
		// know at all) before it asks for a key.
		return with(ReasonAlgorithm, "alg is not RS256 or ES256", jwt.ErrTokenSignatureInvalid)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return with(ReasonSignature, "", jwt.ErrTokenSignatureInvalid)
	case !errors.Is(err, jwt.ErrTokenInvalidClaims):
		return with(ReasonMalformed, "", nil)
	case errors.Is(err, jwt.ErrTokenExpired):
		return with(ReasonExpired, "", jwt.ErrTokenExpired)
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return with(ReasonNotYetValid, "", jwt.ErrTokenNotValidYet)
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return with(ReasonIssuedInFuture, "", jwt.ErrTokenUsedBeforeIssued)
	case c.ExpiresAt == nil:
		return with(ReasonMissingExpiry, "", jwt.ErrTokenRequiredClaimMissing)
	case errors.Is(err, jwt.ErrTokenInvalidIssuer) || c.Issuer == "":
		return with(ReasonIssuer, "iss is not the configured issuer", jwt.ErrTokenInvalidIssuer)
	case errors.Is(err, jwt.ErrTokenInvalidAudience) || len(c.Audience) == 0:
		return with(ReasonAudience, "aud does not name this gateway", jwt.ErrTokenInvalidAudience)
	default:
		return with(ReasonClaim, "", jwt.ErrTokenInvalidClaims)
	}
}
