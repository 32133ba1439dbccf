package narrative

import (
	"regexp"
	"slices"
	"sort"
	"testing"
)

func TestPhraseTablesLoad(t *testing.T) {
	if err := loadErr; err != nil {
		t.Fatal(err)
	}
	if got := Languages(); !slices.Equal(got, []string{"en", "de", "nl", "uk"}) {
		t.Fatalf("languages %v", got)
	}
}

var placeholder = regexp.MustCompile(`\{[a-z]+\}`)

// Every language has exactly the English keys, with the same
// placeholders, and no phrase is left empty or untranslated by copying a
// key name.
func TestPhraseTablesMatchEnglish(t *testing.T) {
	en := tables[Default]
	for _, lang := range Languages()[1:] {
		t.Run(lang, func(t *testing.T) {
			m := tables[lang]
			for k, v := range en {
				tv, ok := m[k]
				if !ok {
					t.Errorf("missing %s", k)
					continue
				}
				if tv == "" || tv == k {
					t.Errorf("%s is empty or the key itself", k)
				}
				a, b := placeholder.FindAllString(v, -1), placeholder.FindAllString(tv, -1)
				sort.Strings(a)
				sort.Strings(b)
				if !slices.Equal(a, b) {
					t.Errorf("%s: placeholders %v, English has %v", k, b, a)
				}
			}
			for k := range m {
				if _, ok := en[k]; !ok {
					t.Errorf("%s is not an English key", k)
				}
			}
		})
	}
}

func TestText(t *testing.T) {
	de := For("de")
	if got := de.Text("missing.timeout", "source", "nl-lsp", "country", "NL"); got != "nl-lsp (NL) hat nicht rechtzeitig geantwortet." {
		t.Fatalf("got %q", got)
	}
	if got := For("fr"); got.Lang() != "en" || got.Text("section.problems") != "Problem list" {
		t.Fatalf("a language without phrases must fall back to English, got %s %q", got.Lang(), got.Text("section.problems"))
	}
	if got := de.Text("no.such.key"); got != "no.such.key" || de.Has("no.such.key") {
		t.Fatalf("unknown key: %q", got)
	}
}

func TestNegotiate(t *testing.T) {
	tests := []struct {
		name   string
		header []string
		want   string
	}{
		{"no header", nil, "en"},
		{"empty", []string{""}, "en"},
		{"german", []string{"de"}, "de"},
		{"regional tag", []string{"de-AT"}, "de"},
		{"upper case", []string{"NL-be"}, "nl"},
		{"ukrainian with region", []string{"uk-UA,uk;q=0.9"}, "uk"},
		{"weights order", []string{"en;q=0.5, nl;q=0.8, de;q=0.7"}, "nl"},
		{"unsupported first", []string{"fr-FR, fr;q=0.9, de;q=0.8, en;q=0.7"}, "de"},
		{"only unsupported", []string{"fr, es"}, "en"},
		{"wildcard", []string{"fr, *;q=0.5"}, "en"},
		{"wildcard with exclusion", []string{"*, en;q=0"}, "de"},
		{"all excluded", []string{"de;q=0, *;q=0"}, "en"},
		{"tie goes to the first listed", []string{"nl;q=0.8, de;q=0.8"}, "nl"},
		{"exact range decides over regional", []string{"de-CH;q=0.9, de;q=0.1, nl;q=0.5"}, "nl"},
		{"several header lines", []string{"fr", "uk;q=0.3"}, "uk"},
		{"malformed weight skipped", []string{"de;q=2, nl;q=0.4"}, "nl"},
		{"malformed tag skipped", []string{"d€, nl"}, "nl"},
		{"too many decimals skipped", []string{"de;q=0.0001, nl;q=0.1"}, "nl"},
		{"country code is not a language", []string{"ua"}, "en"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Negotiate(tt.header...); got != tt.want {
				t.Fatalf("Negotiate(%q) = %s, want %s", tt.header, got, tt.want)
			}
		})
	}
}

// FuzzNegotiate: any header value yields a language that has phrases, and
// never a panic.
func FuzzNegotiate(f *testing.F) {
	for _, s := range []string{"de", "uk-UA,uk;q=0.9,en;q=0.8", "*;q=0", "nl;q=0.5, de;q=1.0", "x-klingon", ";;;,,,q=", "de;q=0.", "*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		got := Negotiate(header)
		if !slices.Contains(Languages(), got) {
			t.Fatalf("Negotiate(%q) = %q, not a language with phrases", header, got)
		}
	})
}
