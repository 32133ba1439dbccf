// Package auth verifies SMART Backend Services bearer tokens and turns
// their claims into a Requester. A Verifier checks a JWT (RS256 or ES256
// only) against keys from a JWKS file, a JWKS URL refreshed in the
// background, or the development key; it checks issuer, audience, expiry,
// not-before, issued-at and total lifetime with a bounded clock skew, and
// reads org, country, role, purpose of use (IHE IUA forms), SMART scopes
// and break-glass. A token verified once is remembered by its SHA-256
// until its exp, while the key that verified it stays in the key set
// (tokencache.go), so a client reusing its token is not verified in full
// each time. ParseScope checks the SMART v1/v2 resource scopes that
// `mhg token` mints; the scopes a request carries are enforced by the
// policy (policies/mhg/authz), not here. The package also holds the
// development signing key that `mhg token` uses in the embedded default
// (LoadOrCreateDevKey, Mint), and refuses to mint without it.
//
// NewVerifier and Mint take VerifierOptions, not the gateway's
// configuration: the server translates the auth section into them.
//
// It does not speak HTTP beyond parsing an Authorization header value and
// writing the WWW-Authenticate challenge of a refusal (Challenge), and it
// decides nothing about data release: a token without a purpose of use is
// valid here, and the policy (authz) denies it.
package auth
