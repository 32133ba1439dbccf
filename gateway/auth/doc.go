// Package auth verifies SMART Backend Services bearer tokens (JWT, RS256 or
// ES256, against a JWKS) and turns their claims into a Requester. It also
// holds the development signing key that `mhg token` uses in the embedded
// default, and refuses to mint with anything else.
package auth
