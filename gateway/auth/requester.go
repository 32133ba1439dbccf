package auth

import "context"

// Requester is who is asking, as the verified bearer token says. Its JSON
// form is the policy input's "requester" object, so the field tags are the
// Rego paths (input.requester.purpose_of_use, ...).
type Requester struct {
	// ClientID is the token's "sub" (SMART Backend Services: the client id).
	ClientID string `json:"client_id"`
	// Org is the requesting organisation's identifier ("org" claim).
	Org string `json:"org"`
	// Country is the ISO 3166-1 alpha-2 country of the requesting
	// organisation ("country" claim).
	Country string `json:"country"`
	// Role is clinician, nurse, public-health, researcher, auditor, admin
	// or any other string ("role" claim).
	Role string `json:"role"`
	// PurposeOfUse is an HL7 v3 PurposeOfUse code (TREAT, ETREAT, COC, ...)
	// from the "purpose_of_use" claim. Empty means none was given, and no
	// data is released without one.
	PurposeOfUse string `json:"purpose_of_use"`
	// Scopes are the SMART v2 scopes granted ("scope" claim, split).
	Scopes []string `json:"scopes"`
	// BreakGlass is set when the token asserts an emergency override.
	BreakGlass bool `json:"break_glass"`
	// TokenID is the token's "jti", for audit; it is not a policy input.
	TokenID string `json:"-"`
}

type ctxKey struct{}

// NewContext returns a context carrying r.
func NewContext(ctx context.Context, r Requester) context.Context {
	return context.WithValue(ctx, ctxKey{}, r)
}

// FromContext returns the Requester carried by ctx, if any.
func FromContext(ctx context.Context) (Requester, bool) {
	r, ok := ctx.Value(ctxKey{}).(Requester)
	return r, ok
}
