package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/migrant-health/mhg/gateway/auth"
)

// CookieName is the session cookie. The __Host- prefix makes the browser
// insist on Secure, Path=/ and no Domain, so no other host can set it.
const CookieName = "__Host-mhg-console"

// loginCookie carries the state of a sign-in under way (OIDC state, PKCE
// verifier, nonce); it lives for minutes and only on the callback path.
const loginCookie = "__Host-mhg-console-login"

// Session is one signed-in person. It is kept on the server; the cookie
// holds only its random id.
type Session struct {
	// ID is the cookie value; CSRF the token every form must carry.
	ID   string
	CSRF string
	// Subject identifies the person at the identity provider (or
	// "one-time-link"); Name is what the pages show.
	Subject string
	Name    string
	// Roles are the person's console roles (legal, auditor, ...), from the
	// configured claim. Every action asks the policy with each in turn.
	Roles []string
	// Org, Country and Purpose describe the person as the policy and the
	// audit records see them.
	Org, Country, Purpose string
	// Created and LastSeen bound the session (max age, idle timeout).
	Created, LastSeen time.Time
}

// Requester is the session as the policy sees it, acting in one role.
// The console is the client: its scopes let it read and search through the
// gateway; what each role may do is the policy's to decide.
func (s *Session) Requester(role string) auth.Requester {
	return auth.Requester{
		ClientID: s.Subject, Org: s.Org, Country: s.Country, Role: role,
		PurposeOfUse: s.Purpose, Scopes: []string{"system/*.rs"},
	}
}

// sessions is the server-side session store.
type sessions struct {
	mu     sync.Mutex
	byID   map[string]*Session
	idle   time.Duration
	maxAge time.Duration
	now    func() time.Time
}

func newSessions(idle, maxAge time.Duration, now func() time.Time) *sessions {
	return &sessions{byID: map[string]*Session{}, idle: idle, maxAge: maxAge, now: now}
}

// create stores a new session for the person described by s.
func (st *sessions) create(s Session) *Session {
	now := st.now()
	s.ID, s.CSRF = randomToken(), randomToken()
	s.Created, s.LastSeen = now, now
	st.mu.Lock()
	defer st.mu.Unlock()
	st.sweep(now)
	st.byID[s.ID] = &s
	return &s
}

// get returns the live session with that id and marks it seen; expired
// sessions (idle or too old) are removed.
func (st *sessions) get(id string) (*Session, bool) {
	now := st.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.byID[id]
	if !ok {
		return nil, false
	}
	if now.Sub(s.LastSeen) > st.idle || now.Sub(s.Created) > st.maxAge {
		delete(st.byID, id)
		return nil, false
	}
	s.LastSeen = now
	cp := *s
	cp.Roles = slices.Clone(s.Roles)
	return &cp, true
}

func (st *sessions) delete(id string) {
	st.mu.Lock()
	delete(st.byID, id)
	st.mu.Unlock()
}

// sweep drops expired sessions; called with mu held.
func (st *sessions) sweep(now time.Time) {
	for id, s := range st.byID {
		if now.Sub(s.LastSeen) > st.idle || now.Sub(s.Created) > st.maxAge {
			delete(st.byID, id)
		}
	}
}

// links are one-time sign-in links: each token signs in once, within its
// lifetime.
type links struct {
	mu     sync.Mutex
	tokens map[string]time.Time // token -> expiry
	now    func() time.Time
}

func (l *links) mint(ttl time.Duration) string {
	tok := randomToken()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tokens == nil {
		l.tokens = map[string]time.Time{}
	}
	l.tokens[tok] = l.now().Add(ttl)
	return tok
}

// use consumes a token; it reports whether the token was live.
func (l *links) use(tok string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	exp, ok := l.tokens[tok]
	if !ok {
		return false
	}
	delete(l.tokens, tok)
	return l.now().Before(exp)
}

// randomToken returns 32 random bytes, URL-safe.
func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+).
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// setCookie sets a cookie with the flags every console cookie has: Secure,
// HttpOnly, SameSite=Lax (sent on top-level navigations from the identity
// provider back to the console, never on cross-site POSTs), Path=/.
func setCookie(w http.ResponseWriter, name, value string, maxAge time.Duration) {
	c := &http.Cookie{
		Name: name, Value: value, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
	switch {
	case maxAge < 0:
		c.MaxAge = -1
	case maxAge > 0:
		c.MaxAge = int(maxAge / time.Second)
	}
	http.SetCookie(w, c)
}

// sameToken compares tokens in constant time.
func sameToken(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
