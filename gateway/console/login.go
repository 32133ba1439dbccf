package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// oidcClient signs people in with the authorization code flow and PKCE.
// The provider is discovered at the first sign-in, so the gateway starts
// while the identity provider is down.
type oidcClient struct {
	cfg      OIDC
	redirect string

	mu       sync.Mutex
	provider *oidc.Provider
}

func newOIDCClient(cfg OIDC, redirect string) *oidcClient {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Scopes == nil {
		cfg.Scopes = []string{"profile", "email"}
	}
	if cfg.RoleClaim == "" {
		cfg.RoleClaim = "roles"
	}
	if cfg.OrgClaim == "" {
		cfg.OrgClaim = "org"
	}
	if cfg.CountryClaim == "" {
		cfg.CountryClaim = "country"
	}
	return &oidcClient{cfg: cfg, redirect: redirect}
}

func (o *oidcClient) setup(ctx context.Context) (*oidc.Provider, *oauth2.Config, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.provider == nil {
		p, err := oidc.NewProvider(oidc.ClientContext(ctx, o.cfg.HTTPClient), o.cfg.Issuer)
		if err != nil {
			return nil, nil, fmt.Errorf("console: identity provider discovery: %w", err)
		}
		o.provider = p
	}
	return o.provider, &oauth2.Config{
		ClientID: o.cfg.ClientID, ClientSecret: o.cfg.ClientSecret, RedirectURL: o.redirect,
		Endpoint: o.provider.Endpoint(), Scopes: append([]string{oidc.ScopeOpenID}, o.cfg.Scopes...),
	}, nil
}

// loginState is what the login cookie carries between the redirect to the
// provider and the callback.
type loginState struct {
	State, Verifier, Nonce string
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, nil, http.StatusOK, "login", "Sign in", struct{ OIDC, Links bool }{c.oidc != nil, c.opts.OneTimeLinks})
}

func (c *Console) oidcStart(w http.ResponseWriter, r *http.Request) {
	if c.oidc == nil {
		c.errorPage(w, r, nil, http.StatusNotFound, "No identity provider is configured (console.oidc.issuer).")
		return
	}
	_, cfg, err := c.oidc.setup(r.Context())
	if err != nil {
		c.log.ErrorContext(r.Context(), "console: sign-in", "error", err)
		c.errorPage(w, r, nil, http.StatusBadGateway, "The identity provider cannot be reached. Try again later.")
		return
	}
	st := loginState{State: randomToken(), Verifier: oauth2.GenerateVerifier(), Nonce: randomToken()}
	id := randomToken()
	now := c.opts.Now()
	c.pending.Range(func(k, v any) bool {
		if now.After(v.(pendingLogin).until) {
			c.pending.Delete(k)
		}
		return true
	})
	c.pending.Store(id, pendingLogin{st: st, until: c.opts.Now().Add(10 * time.Minute)})
	setCookie(w, loginCookie, id, 10*time.Minute)
	http.Redirect(w, r, cfg.AuthCodeURL(st.State, oauth2.S256ChallengeOption(st.Verifier), oidc.Nonce(st.Nonce)), http.StatusFound)
}

// pendingLogin is a sign-in under way, kept on the server.
type pendingLogin struct {
	st    loginState
	until time.Time
}

func (c *Console) oidcCallback(w http.ResponseWriter, r *http.Request) {
	if c.oidc == nil {
		c.errorPage(w, r, nil, http.StatusNotFound, "No identity provider is configured.")
		return
	}
	fail := func(status int, msg string, err error) {
		if err != nil {
			c.log.WarnContext(r.Context(), "console: sign-in refused", "error", err)
		}
		c.errorPage(w, r, nil, status, msg)
	}
	ck, err := r.Cookie(loginCookie)
	if err != nil {
		fail(http.StatusBadRequest, "This sign-in was not started here, or took too long. Start again.", nil)
		return
	}
	setCookie(w, loginCookie, "", -1)
	v, ok := c.pending.LoadAndDelete(ck.Value)
	pl, _ := v.(pendingLogin)
	if !ok || c.opts.Now().After(pl.until) || !sameToken(r.URL.Query().Get("state"), pl.st.State) {
		fail(http.StatusBadRequest, "This sign-in was not started here, or took too long. Start again.", nil)
		return
	}
	if e := r.URL.Query().Get("error"); e != "" {
		fail(http.StatusUnauthorized, "The identity provider refused the sign-in.", nil)
		return
	}
	provider, cfg, err := c.oidc.setup(r.Context())
	if err != nil {
		fail(http.StatusBadGateway, "The identity provider cannot be reached. Try again later.", err)
		return
	}
	ctx := oidc.ClientContext(r.Context(), c.oidc.cfg.HTTPClient)
	tok, err := cfg.Exchange(ctx, r.URL.Query().Get("code"), oauth2.VerifierOption(pl.st.Verifier))
	if err != nil {
		fail(http.StatusUnauthorized, "The sign-in could not be completed.", err)
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: c.oidc.cfg.ClientID, Now: c.opts.Now}).Verify(ctx, raw)
	if err != nil {
		fail(http.StatusUnauthorized, "The sign-in could not be completed.", err)
		return
	}
	if !sameToken(idt.Nonce, pl.st.Nonce) {
		fail(http.StatusUnauthorized, "The sign-in could not be completed.", errors.New("nonce mismatch"))
		return
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		fail(http.StatusUnauthorized, "The sign-in could not be completed.", err)
		return
	}
	s := Session{Subject: idt.Subject, Name: firstString(claims, "name", "preferred_username", "email"),
		Roles: stringsClaim(claims, c.oidc.cfg.RoleClaim), Org: firstString(claims, c.oidc.cfg.OrgClaim),
		Country: strings.ToUpper(firstString(claims, c.oidc.cfg.CountryClaim)), Purpose: c.opts.Purpose}
	if s.Name == "" {
		s.Name = s.Subject
	}
	c.startSession(w, r, s)
}

// linkLogin signs in with a one-time link: the token is used up, and the
// browser is sent on to a URL without it.
func (c *Console) linkLogin(w http.ResponseWriter, r *http.Request) {
	if !c.opts.OneTimeLinks || !c.links.use(r.URL.Query().Get("token")) {
		c.errorPage(w, r, nil, http.StatusUnauthorized, "This sign-in link is not valid: each link signs in once. Restart the gateway, or ask for a new link.")
		return
	}
	c.startSession(w, r, Session{Subject: "one-time-link", Name: "one-time link (" + strings.Join(c.opts.LinkRoles, ", ") + ")",
		Roles: c.opts.LinkRoles, Purpose: c.opts.Purpose})
}

func (c *Console) startSession(w http.ResponseWriter, r *http.Request, s Session) {
	if s.Org == "" {
		s.Org = c.opts.Org
	}
	if s.Country == "" {
		s.Country = c.opts.Country
	}
	if s.Purpose == "" {
		s.Purpose = c.opts.Purpose
	}
	ns := c.sessions.create(s)
	setCookie(w, CookieName, ns.ID, 0)
	c.log.InfoContext(r.Context(), "console: signed in", "roles", strings.Join(ns.Roles, " "))
	http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, s *Session) {
	c.sessions.delete(s.ID)
	setCookie(w, CookieName, "", -1)
	http.Redirect(w, r, Prefix+"/login", http.StatusSeeOther)
}

// stringsClaim reads a claim that is a string or a list of strings; a
// dotted name reaches into objects (realm_access.roles).
func stringsClaim(claims map[string]any, name string) []string {
	var v any = claims
	for _, part := range strings.Split(name, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[part]
	}
	switch x := v.(type) {
	case string:
		return strings.Fields(x)
	case []any:
		var out []string
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func firstString(claims map[string]any, names ...string) string {
	for _, n := range names {
		if v := stringsClaim(claims, n); len(v) > 0 {
			return strings.Join(v, " ")
		}
	}
	return ""
}
