package r4

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// FHIR search values escape ',', '|', '$' and '\' with a backslash
// (R4 search, "Escaping Search Parameters"). These helpers are the one
// place the gateway reads and writes that syntax.

// SplitEscaped splits s at every sep that is not escaped with a backslash.
// The parts stay escaped.
func SplitEscaped(s string, sep byte) []string {
	var parts []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// Unescape removes search escaping: `\x` becomes x.
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

var escaper = strings.NewReplacer(`\`, `\\`, `|`, `\|`, `,`, `\,`, `$`, `\$`)

// Escape escapes the characters search syntax gives a meaning.
func Escape(s string) string { return escaper.Replace(s) }

// SplitToken splits a token search value "system|value" at its first
// unescaped '|' and unescapes both parts. hasSystem is false for a bare
// "value" (any system); "|value" has an empty system (no system).
func SplitToken(s string) (system, value string, hasSystem bool) {
	parts := SplitEscaped(s, '|')
	if len(parts) == 1 {
		return "", Unescape(s), false
	}
	return Unescape(parts[0]), Unescape(s[len(parts[0])+1:]), true
}

// TokenValue renders system|value as a token search value, escaped.
func TokenValue(system, value string) string { return Escape(system) + "|" + Escape(value) }

// MaxSearchValue bounds one search value, in bytes: far above any real
// system URI and identifier together.
const MaxSearchValue = 1024

// CheckToken reports why s is not a token search value the gateway can
// pass on ("system|value", "|value" or "value"), or nil. The value part must
// not be empty (a bare "system|" would match every identifier of the
// system), there is at most one unescaped '|', no dangling backslash and no
// control character. Messages never quote s.
func CheckToken(s string) error {
	if err := checkSearchValue(s); err != nil {
		return err
	}
	parts := SplitEscaped(s, '|')
	switch {
	case len(parts) > 2:
		return errors.New("has more than one unescaped '|' (want system|value)")
	case parts[len(parts)-1] == "":
		return errors.New("has no value after the system (want system|value)")
	}
	return nil
}

// checkSearchValue checks what every search value must hold to: bounded,
// no control characters, no backslash that escapes nothing.
func checkSearchValue(s string) error {
	if len(s) > MaxSearchValue {
		return fmt.Errorf("is longer than %d bytes", MaxSearchValue)
	}
	escaped := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			return errors.New("holds a control character")
		}
		escaped = c == '\\' && !escaped
	}
	if escaped {
		return errors.New("ends in a backslash that escapes nothing")
	}
	if !utf8.ValidString(s) {
		return errors.New("is not UTF-8")
	}
	return nil
}
