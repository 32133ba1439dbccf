package auth

import (
	"fmt"
	"net/url"
	"strings"
)

// FHIR interactions, as the HTTP layer names them when it asks Allows.
const (
	InteractionRead          = "read"
	InteractionVRead         = "vread"
	InteractionHistory       = "history" // instance history: GET [type]/[id]/_history
	InteractionHistoryType   = "history-type"
	InteractionHistorySystem = "history-system"
	InteractionSearchType    = "search-type"
	InteractionSearchSystem  = "search-system"
	InteractionCreate        = "create"
	InteractionUpdate        = "update"
	InteractionPatch         = "patch"
	InteractionDelete        = "delete"
	InteractionOperation     = "operation"
)

// Permission is a set of SMART v2 permissions (c, r, u, d, s).
type Permission uint8

// SMART v2 permissions.
const (
	PermCreate Permission = 1 << iota
	PermRead
	PermUpdate
	PermDelete
	PermSearch
)

// permLetters is in the order SMART v2 requires them to be written.
var permLetters = [...]struct {
	p Permission
	c byte
}{{PermCreate, 'c'}, {PermRead, 'r'}, {PermUpdate, 'u'}, {PermDelete, 'd'}, {PermSearch, 's'}}

// String writes p in SMART v2 form ("rs", "cruds").
func (p Permission) String() string {
	var b strings.Builder
	for _, l := range permLetters {
		if p&l.p != 0 {
			b.WriteByte(l.c)
		}
	}
	return b.String()
}

// Scope is one parsed SMART resource scope, v1 or v2. v1 permissions are
// kept in their v2 meaning: "read" is rs, "write" is cud, "*" is cruds.
type Scope struct {
	// Context is "system", "user" or "patient". Only "system" grants
	// anything through Allows: the gateway serves system-to-system calls
	// (SMART Backend Services) and has no user or patient launch context to
	// bind the other two to.
	Context string
	// ResourceType is a FHIR resource type name or "*".
	ResourceType string
	// Perms are the permissions granted.
	Perms Permission
	// Query is the v2 narrowing after "?" (e.g. "category=laboratory"),
	// "" when the scope is not narrowed.
	Query string
}

// ParseScope parses a SMART resource scope: v2 "system/Patient.rs",
// "system/*.cruds", "system/Observation.rs?category=laboratory", or v1
// "system/Patient.read", "system/*.write", "system/*.*". Contexts system,
// user and patient are accepted (only system grants access, see Allows).
// v2 permissions must be a non-empty subset of c, r, u, d, s written in
// that order, as SMART v2 prescribes. A query suffix is only valid on v2
// scopes and must be a well-formed, non-empty query string. Anything else,
// including non-resource scopes such as "openid" or "launch/patient",
// returns an error wrapping ErrInvalidScope that does not quote s.
func ParseScope(s string) (Scope, error) {
	var sc Scope
	head, query, narrowed := strings.Cut(s, "?")
	ctx, rest, ok := strings.Cut(head, "/")
	if !ok {
		return Scope{}, fmt.Errorf("%w: no context/resource separator", ErrInvalidScope)
	}
	switch ctx {
	case "system", "user", "patient":
		sc.Context = ctx
	default:
		return Scope{}, fmt.Errorf("%w: context is not system, user or patient", ErrInvalidScope)
	}
	typ, perm, ok := strings.Cut(rest, ".")
	if !ok {
		return Scope{}, fmt.Errorf("%w: no resource.permission separator", ErrInvalidScope)
	}
	if typ != "*" && !isResourceTypeName(typ) {
		return Scope{}, fmt.Errorf("%w: resource type is not a FHIR type name or *", ErrInvalidScope)
	}
	sc.ResourceType = typ
	v1 := true
	switch perm {
	case "read":
		sc.Perms = PermRead | PermSearch
	case "write":
		sc.Perms = PermCreate | PermUpdate | PermDelete
	case "*":
		sc.Perms = PermCreate | PermRead | PermUpdate | PermDelete | PermSearch
	default:
		v1 = false
		p, err := parsePermissions(perm)
		if err != nil {
			return Scope{}, err
		}
		sc.Perms = p
	}
	if narrowed {
		if v1 {
			return Scope{}, fmt.Errorf("%w: SMART v1 scopes take no query", ErrInvalidScope)
		}
		if query == "" {
			return Scope{}, fmt.Errorf("%w: empty query after ?", ErrInvalidScope)
		}
		if _, err := url.ParseQuery(query); err != nil {
			return Scope{}, fmt.Errorf("%w: malformed query", ErrInvalidScope)
		}
		sc.Query = query
	}
	return sc, nil
}

func parsePermissions(s string) (Permission, error) {
	if s == "" {
		return 0, fmt.Errorf("%w: no permissions", ErrInvalidScope)
	}
	var p Permission
	next := 0 // index into permLetters: letters must come in c, r, u, d, s order
	for i := 0; i < len(s); i++ {
		found := false
		for next < len(permLetters) {
			l := permLetters[next]
			next++
			if l.c == s[i] {
				p |= l.p
				found = true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("%w: permissions are not a subset of cruds in that order", ErrInvalidScope)
		}
	}
	return p, nil
}

// isResourceTypeName checks the shape of a FHIR resource type name; which
// types exist is the HTTP layer's business, not the token's.
func isResourceTypeName(s string) bool {
	if s == "" || len(s) > 64 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// String writes the scope in SMART v2 form.
func (s Scope) String() string {
	out := s.Context + "/" + s.ResourceType + "." + s.Perms.String()
	if s.Query != "" {
		out += "?" + s.Query
	}
	return out
}

// Allows reports whether the scope grants interaction on resourceType to a
// system client.
//
// The permission needed: read, vread and history (instance) need r;
// search-type, search-system, history-type and history-system need s;
// create needs c; update and patch need u; delete needs d. An operation
// needs r or s: the gateway's operations ($summary, $everything, ...) only
// read, so the client must be allowed to read or search the type the
// operation runs on; an operation that changed data would need its own
// check. System-level interactions (search-system, history-system, and an
// operation with resourceType "") ignore resourceType and need a "*" scope.
// Unknown interactions are never allowed.
//
// A query-narrowed v2 scope ("system/Observation.rs?category=laboratory")
// allows nothing here: whether a resource meets the narrowing depends on
// its content, which this check does not see, and granting the scope in
// full would widen what the issuer meant to grant. A caller that can
// enforce the narrowing may read Query itself.
//
// user/ and patient/ scopes never allow anything (see Context).
func (s Scope) Allows(resourceType, interaction string) bool {
	if s.Context != "system" || s.Query != "" {
		return false
	}
	var need Permission
	systemLevel := false
	switch interaction {
	case InteractionRead, InteractionVRead, InteractionHistory:
		need = PermRead
	case InteractionSearchType, InteractionHistoryType:
		need = PermSearch
	case InteractionSearchSystem, InteractionHistorySystem:
		need, systemLevel = PermSearch, true
	case InteractionCreate:
		need = PermCreate
	case InteractionUpdate, InteractionPatch:
		need = PermUpdate
	case InteractionDelete:
		need = PermDelete
	case InteractionOperation:
		need, systemLevel = PermRead|PermSearch, resourceType == ""
	default:
		return false
	}
	if systemLevel {
		if s.ResourceType != "*" {
			return false
		}
	} else if resourceType == "" || (s.ResourceType != "*" && s.ResourceType != resourceType) {
		return false
	}
	return s.Perms&need != 0
}

// ScopesAllow reports whether any of scopes (as in Requester.Scopes)
// allows interaction on resourceType. Strings that are not SMART resource
// scopes ("openid", "offline_access", ...) grant nothing and are skipped.
func ScopesAllow(scopes []string, resourceType, interaction string) bool {
	for _, raw := range scopes {
		sc, err := ParseScope(raw)
		if err == nil && sc.Allows(resourceType, interaction) {
			return true
		}
	}
	return false
}
