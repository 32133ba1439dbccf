package r4

import (
	"reflect"
	"strings"
	"testing"
)

func TestSplitToken(t *testing.T) {
	tests := []struct {
		in, system, value string
		hasSystem         bool
	}{
		{"http://s|v", "http://s", "v", true},
		{"|v", "", "v", true},
		{"v", "", "v", false},
		{`a\|b|c\,d`, "a|b", "c,d", true},
		{`s|v|w`, "s", "v|w", true},
		{`only\|escaped`, "", "only|escaped", false},
		{`trailing\`, "", `trailing\`, false},
		{`s|v\`, "s", `v\`, true},
	}
	for _, tt := range tests {
		s, v, ok := SplitToken(tt.in)
		if s != tt.system || v != tt.value || ok != tt.hasSystem {
			t.Errorf("SplitToken(%q) = %q, %q, %v", tt.in, s, v, ok)
		}
	}
	if got := TokenValue("a|b", `c,d\`); got != `a\|b|c\,d\\` {
		t.Errorf("TokenValue = %q", got)
	}
	if s, v, _ := SplitToken(TokenValue("sy|s", "v,$")); s != "sy|s" || v != "v,$" {
		t.Errorf("round trip: %q %q", s, v)
	}
	if got := SplitEscaped(`a,b\,c,`, ','); !reflect.DeepEqual(got, []string{"a", `b\,c`, ""}) {
		t.Errorf("SplitEscaped = %q", got)
	}
}

func FuzzSplitToken(f *testing.F) {
	for _, s := range []string{"s|v", `a\|b|c`, "|", `\`, "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, v, ok := SplitToken(in)
		if !ok {
			return
		}
		s2, v2, ok2 := SplitToken(TokenValue(s, v))
		if !ok2 || s2 != s || v2 != v {
			t.Fatalf("%q -> %q|%q does not round-trip (%q|%q)", in, s, v, s2, v2)
		}
	})
}

func TestCheckToken(t *testing.T) {
	for in, ok := range map[string]bool{
		"http://s|v": true, "|v": true, "v": true, `a\|b|c`: true, `s|v\|w`: true, "s|ü": true,
		"a|b|c": false, "s|v|": false, "s|": false, "|": false, "": false, `v\`: false,
		"a\x00b": false, "a\nb": false, "s|\x7f": false, "\xff": false,
		strings.Repeat("a", MaxSearchValue): true, strings.Repeat("a", MaxSearchValue+1): false,
	} {
		if err := CheckToken(in); (err == nil) != ok {
			t.Errorf("CheckToken(%q) = %v, want ok=%v", in, err, ok)
		} else if err != nil && strings.Contains(err.Error(), in) && len(in) > 1 {
			t.Errorf("CheckToken(%q) quotes its input: %v", in, err)
		}
	}
}

// FuzzCheckToken: what CheckToken accepts splits into a system and a
// non-empty value that render back to an equivalent token.
func FuzzCheckToken(f *testing.F) {
	for _, s := range []string{"s|v", `a\|b|c`, "|", `\`, "x", "a|b|c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if CheckToken(in) != nil {
			return
		}
		s, v, hasSystem := SplitToken(in)
		if v == "" {
			t.Fatalf("%q accepted with an empty value", in)
		}
		again := v
		if hasSystem {
			again = TokenValue(s, v)
		} else {
			again = Escape(v)
		}
		if err := CheckToken(again); err != nil {
			t.Fatalf("%q accepted, its re-rendering %q refused: %v", in, again, err)
		}
	})
}

func TestIsID(t *testing.T) {
	for in, want := range map[string]bool{
		"a": true, "de-sample.AbC-9.x": true, string(make([]byte, 64)): false,
		"": false, "a_b": false, "a b": false, "é": false, "Patient/1": false,
		"0123456789012345678901234567890123456789012345678901234567890123":  true,
		"01234567890123456789012345678901234567890123456789012345678901234": false,
	} {
		if got := IsID(in); got != want {
			t.Errorf("IsID(%q) = %v, want %v", in, got, want)
		}
	}
}
