package auth

import (
	"fmt"
	"net/url"
	"strings"
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

// Scope is one parsed SMART resource scope, v1 or v2. v1 permissions are
// kept in their v2 meaning: "read" is rs, "write" is cud, "*" is cruds.
type Scope struct {
	// Context is "system", "user" or "patient". The policy grants
	// access on "system" scopes only: the gateway serves system-to-system
	// calls (SMART Backend Services) and has no user or patient launch
	// context to bind the other two to.
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
// user and patient are accepted (only system grants access, in policy).
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
