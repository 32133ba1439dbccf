package source

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func demographicBundle(t *testing.T) *Bundle {
	t.Helper()
	dir := t.TempDir()
	records := strings.Join([]string{
		`{"resourceType":"Patient","id":"olena","name":[{"family":"Шевченко","given":["Олена","Петрівна"]}],"gender":"female","birthDate":"1980-05-03"}`,
		`{"resourceType":"Patient","id":"mohammed","name":[{"family":"Al-Khatib","given":["Mohammed"]}],"gender":"male","birthDate":"1975"}`,
		`{"resourceType":"Patient","id":"muller","name":[{"family":"Müller","given":["Jürgen"]}],"gender":"male","birthDate":"1956-11"}`,
		`{"resourceType":"Patient","id":"nobirth","name":[{"family":"Tesfay"}]}`,
	}, "\n")
	if err := os.WriteFile(filepath.Join(dir, "p.ndjson"), []byte(records), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := OpenBundle(Options{ID: "x", Country: "DE", Profile: "ips", Kind: KindBundle, Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBundleDemographicSearch(t *testing.T) {
	b := demographicBundle(t)
	tests := []struct {
		query string
		want  []string
	}{
		{"family=m%C3%BCl", []string{"muller"}},
		{"family=MULLER", []string{"muller"}},
		{"family=Al-", []string{"mohammed"}},
		{"given=Moh", []string{"mohammed"}},
		{"name=шев", []string{"olena"}},
		{"phonetic=Shevchenko", []string{"olena"}},
		{"phonetic=Schewtschenko,Khatib", []string{"olena", "mohammed"}},
		{"phonetic=Muhammad", []string{"mohammed"}},
		{"phonetic=Schewtschenko&phonetic=Olena", []string{"olena"}},
		{"phonetic=Schewtschenko&phonetic=Mohammed", nil},
		{"birthdate=1980-05-03", []string{"olena"}},
		{"birthdate=1980", []string{"olena"}},
		{"birthdate=ge1975-01-01&birthdate=le1980-12-31", []string{"olena", "mohammed"}},
		{"birthdate=lt1957", []string{"muller"}},
		{"birthdate=gt1979-12-31", []string{"olena"}},
		{"birthdate=ap1976", []string{"mohammed"}},
		{"gender=male&birthdate=ge1970", []string{"mohammed"}},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := b.Search(context.Background(), "Patient", q)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, r := range got {
				ids = append(ids, r.ID)
			}
			if !slices.Equal(ids, tc.want) {
				t.Errorf("got %v, want %v", ids, tc.want)
			}
		})
	}
	for _, bad := range []string{"birthdate=03.05.1980", "birthdate=xx1980", "phonetic=---", "family="} {
		q, _ := url.ParseQuery(bad)
		if _, err := b.Search(context.Background(), "Patient", q); !errors.Is(err, ErrRejected) {
			t.Errorf("%s: %v, want ErrRejected", bad, err)
		}
	}
	if b.PatientMatch() != PatientMatchPhonetic {
		t.Errorf("a bundle source answers %q, want phonetic", b.PatientMatch())
	}
}

func TestFHIRMatchPatients(t *testing.T) {
	var body string
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/fhir/Patient/$match" || r.Header.Get("Content-Type") != "application/fhir+json" {
			t.Errorf("%s %s (%s)", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
		}
		b, _ := io.ReadAll(r.Body)
		body = string(b)
		w.Header().Set("Content-Type", "application/fhir+json")
		w.WriteHeader(status)
		if status != http.StatusOK {
			io.WriteString(w, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"business-rule"}]}`)
			return
		}
		io.WriteString(w, `{"resourceType":"Bundle","type":"searchset","entry":[
			{"resource":{"resourceType":"Patient","id":"p1","name":[{"family":"Shevchenko"}]},"search":{"mode":"match","score":0.9}},
			{"resource":{"resourceType":"OperationOutcome","issue":[{"severity":"information","code":"informational"}]},"search":{"mode":"outcome"}}]}`)
	}))
	t.Cleanup(srv.Close)
	s := newTestFHIR(t, Options{ID: "nl", Country: "NL", Profile: "nl-core", Kind: KindFHIR, BaseURL: srv.URL + "/fhir",
		PatientMatch: PatientMatchOperation})
	if s.PatientMatch() != PatientMatchOperation {
		t.Errorf("PatientMatch = %q", s.PatientMatch())
	}
	got, err := s.MatchPatients(context.Background(), []byte(`{"resourceType":"Parameters"}`))
	if err != nil || len(got) != 1 || got[0].ID != "p1" {
		t.Fatalf("got %v, %v", got, err)
	}
	if body != `{"resourceType":"Parameters"}` {
		t.Errorf("sent %s", body)
	}
	status = http.StatusUnprocessableEntity
	_, err = s.MatchPatients(context.Background(), []byte(`{"resourceType":"Parameters"}`))
	if !errors.Is(err, ErrRejected) || strings.Contains(err.Error(), "Parameters") {
		t.Errorf("a refusing source: %v, want ErrRejected without the body", err)
	}
	if s.State() != "closed" {
		t.Errorf("a refusal opened the breaker: %s", s.State())
	}
}
