package server

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/migrant-health/mhg/gateway/audit"
)

// SettingError is why New or Run could not start the gateway: the setting
// at fault, its value, and the cause, said in one line. Every start-up
// failure that a setting can cause is one; callers branch on it with
// errors.As.
type SettingError struct {
	// Setting is the configuration field (audit.log, policy.dir, listen).
	Setting string
	// Value is the field's value as configured; "" when it has none.
	Value string
	// Hint says what to do about it; "" when the cause says enough.
	Hint string
	// Err is the cause.
	Err error
}

func (e *SettingError) Error() string {
	s := e.Setting
	if e.Value != "" {
		s += " " + e.Value
	}
	cause := e.Err.Error()
	// A path error about the value itself need not name the path twice.
	var pe *fs.PathError
	if errors.As(e.Err, &pe) && pe.Path == e.Value {
		cause = pe.Err.Error()
	}
	var locked *audit.LockedError
	switch {
	case errors.As(e.Err, &locked):
		s += " is " + cause
	case e.Value == "" && (strings.HasPrefix(cause, e.Setting+":") || strings.HasPrefix(cause, e.Setting+".")):
		// The cause names the setting already, or a field of it
		// (auth.issuer: ...): said once.
		s = cause
	default:
		s += ": " + cause
	}
	if e.Hint != "" {
		s += "; " + e.Hint
	}
	return s
}

func (e *SettingError) Unwrap() error { return e.Err }

// auditLogError names the audit log setting and says what to do.
func auditLogError(path string, err error) error {
	e := &SettingError{Setting: "audit.log", Value: path, Err: err}
	switch {
	case errors.Is(err, audit.ErrLocked):
		e.Hint = "two gateways cannot share one audit log: stop the other one, or give this one its own with MHG_AUDIT_LOG"
	case errors.Is(err, audit.ErrCorrupt):
		e.Hint = fmt.Sprintf("the gateway appends only to a log it can vouch for; `mhg audit verify %s` shows the damage", path)
	}
	return e
}
