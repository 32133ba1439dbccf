package telemetry

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// LogSafeError is implemented by errors that can describe themselves without
// patient data. The log handler prints LogMessage for an error whose chain
// holds one; any other error is logged by its type only, because error
// messages in a FHIR gateway often quote the document or the request.
type LogSafeError interface {
	error
	LogMessage() string
}

type namedErr struct {
	target error
	name   string
}

var errorTypes struct {
	mu   sync.RWMutex
	list []namedErr
}

// RegisterErrorType gives a sentinel error a stable error.type value (for
// example source.ErrNotFound -> "source.not_found"): ErrorType returns name
// for any error that wraps target. Names must match the error.type shape
// (letters, digits, '.', '_', '-', '/', '*'); other names are refused with
// an error.
func RegisterErrorType(target error, name string) error {
	if target == nil || !shapeTypeName.match(name) {
		return fmt.Errorf("telemetry: error type %q: want a non-nil error and a name of letters, digits and . _ - / *", name)
	}
	errorTypes.mu.Lock()
	defer errorTypes.mu.Unlock()
	errorTypes.list = append(errorTypes.list, namedErr{target: target, name: name})
	return nil
}

// ErrorType classifies err for the error.type attribute without quoting its
// message: a registered sentinel's name, "deadline_exceeded" or "canceled"
// for context errors, otherwise the Go type of the first error in the chain
// that is not a plain wrapper, or "error". It returns "" for a nil error.
func ErrorType(err error) string {
	if err == nil {
		return ""
	}
	errorTypes.mu.RLock()
	for _, n := range errorTypes.list {
		if errors.Is(err, n.target) {
			errorTypes.mu.RUnlock()
			return n.name
		}
	}
	errorTypes.mu.RUnlock()
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline_exceeded"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		switch t := fmt.Sprintf("%T", e); t {
		case "*fmt.wrapError", "*fmt.wrapErrors", "*errors.errorString", "*errors.joinError":
		default:
			if shapeTypeName.match(t) {
				return t
			}
		}
	}
	return "error"
}
