package source

import (
	"errors"
	"net/url"
	"testing"
)

func TestNextPage(t *testing.T) {
	base, _ := url.Parse("http://localhost:8080/fhir")
	page, _ := url.Parse("http://localhost:8080/fhir/Condition?patient=p1")
	tests := []struct {
		name, link, want string
	}{
		{"same origin", "http://localhost:8080/fhir/Condition?_page=2", "http://localhost:8080/fhir/Condition?_page=2"},
		{"host case differs", "http://LOCALHOST:8080/fhir/Condition?_page=2", "http://LOCALHOST:8080/fhir/Condition?_page=2"},
		{"ip for localhost", "http://127.0.0.1:8080/fhir/Condition?_page=2", "http://localhost:8080/fhir/Condition?_page=2"},
		{"proxy host and scheme", "https://ehr.example.org/fhir/Condition?_page=2", "http://localhost:8080/fhir/Condition?_page=2"},
		{"other port", "http://localhost:9999/fhir?_getpages=abc&_offset=20", "http://localhost:8080/fhir?_getpages=abc&_offset=20"},
		{"credentials dropped", "http://u:p@127.0.0.1:8080/fhir/Condition?_page=2", "http://localhost:8080/fhir/Condition?_page=2"},
		{"relative", "Condition?_page=2", "http://localhost:8080/fhir/Condition?_page=2"},
		{"host-relative", "/fhir/Condition?_page=2", "http://localhost:8080/fhir/Condition?_page=2"},
		{"fragment dropped", "Condition?_page=2#x", "http://localhost:8080/fhir/Condition?_page=2"},
		{"same server outside the base", "/other/Condition?_page=2", "http://localhost:8080/other/Condition?_page=2"},
		{"other server outside the base", "http://127.0.0.1:8080/other/Condition", ""},
		{"other server, base as a name prefix", "http://127.0.0.1:8080/fhirx/Condition", ""},
		{"not http", "ftp://localhost:8080/fhir/Condition", ""},
		{"not a URL", "http://%zz", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := nextPage(page, base, tt.link)
			if tt.want == "" {
				if !errors.Is(err, ErrNextLink) {
					t.Fatalf("nextPage = %v, %v; want ErrNextLink", got, err)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Fatalf("nextPage = %v, %v; want %s", got, err, tt.want)
			}
		})
	}
}

func FuzzNextPage(f *testing.F) {
	for _, s := range []string{"http://127.0.0.1:8080/fhir/Condition?_page=2", "Condition?x=1", "//evil.example/fhir/x", "http://%zz", "/other"} {
		f.Add(s)
	}
	base, _ := url.Parse("http://localhost:8080/fhir")
	page, _ := url.Parse("http://localhost:8080/fhir/Condition?patient=p1")
	f.Fuzz(func(t *testing.T, link string) {
		got, err := nextPage(page, base, link)
		if err != nil {
			return
		}
		// Whatever the link says, the request goes to the configured
		// server only.
		if !sameOrigin(got, base) {
			t.Fatalf("nextPage(%q) = %s: another server", link, got)
		}
	})
}
