package server

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/migrant-health/mhg/gateway/config"
	"github.com/migrant-health/mhg/gateway/match"
)

// Names of the benchmark's population (Ukrainian, in Cyrillic): 30 family
// and 24 given names, so that a name is shared by about 140 of 100,000
// people and a name and birth year by two or three, as in a real register.
var (
	benchFamilies = strings.Fields(`Шевченко Коваленко Бондаренко Ткаченко Мельник Кравченко Олійник Шевчук Поліщук Бойко
		Ткачук Коваль Савченко Руденко Марченко Лисенко Мороз Петренко Клименко Павленко Кравчук Гриценко Захарченко Левченко
		Харченко Щербак Юрченко Гончаренко Вовк Яковенко`)
	benchGivens = strings.Fields(`Олександр Андрій Сергій Володимир Дмитро Юрій Микола Іван Олег Віталій Богдан Тарас
		Олена Ольга Наталія Тетяна Ірина Юлія Оксана Світлана Марія Ганна Катерина Людмила`)
)

// benchPerson is person k of the benchmark's population.
func benchPerson(k int) (family, given, birth, gender string) {
	r := rand.New(rand.NewPCG(uint64(k), 7))
	family, given = benchFamilies[r.IntN(len(benchFamilies))], benchGivens[r.IntN(len(benchGivens))]
	gender = "male"
	if strings.HasSuffix(given, "а") || strings.HasSuffix(given, "я") {
		gender = "female"
	}
	birth = fmt.Sprintf("%04d-%02d-%02d", 1940+r.IntN(70), 1+r.IntN(12), 1+r.IntN(28))
	return family, given, birth, gender
}

// writeBenchSource writes n Patients as one source keeps them: in Cyrillic
// (Ukraine) or romanised (the others), each with a passport number.
func writeBenchSource(b *testing.B, dir string, n int, cyrillic bool) {
	b.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "patients.ndjson"))
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for k := range n {
		family, given, birth, gender := benchPerson(k)
		if !cyrillic {
			family, given = latinName(family), latinName(given)
		}
		fmt.Fprintf(w, `{"resourceType":"Patient","id":"p%d","identifier":[{"system":"http://hl7.org/fhir/sid/passport-UKR","value":"P%07d"}],`+
			`"name":[{"use":"official","family":%q,"given":[%q]}],"gender":%q,"birthDate":%q}`+"\n", k, k, family, given, gender, birth)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// latinName writes a Cyrillic name in Latin letters with a capital.
func latinName(s string) string {
	l := match.Latin(s)
	return strings.ToUpper(l[:1]) + l[1:]
}

// BenchmarkMatch is Patient/$match over three national sources of 100,000
// patients each (German and Dutch sources romanised, the Ukrainian one in
// Cyrillic), through the whole handler with the cache off so that every
// request reaches the sources, next to the baseline of the same run: the
// identifier search that finds the same people by passport. Each request
// looks for another person.
func BenchmarkMatch(b *testing.B) {
	n := benchSize

	dir := b.TempDir()
	writeBenchSource(b, filepath.Join(dir, "de"), n, false)
	writeBenchSource(b, filepath.Join(dir, "nl"), n, false)
	writeBenchSource(b, filepath.Join(dir, "ua"), n, true)
	g := startGateway(b, func(c *config.Config) {
		c.Sources = []config.Source{
			{ID: "de-big", Country: "DE", Profile: "ips", Kind: config.KindBundle, Dir: filepath.Join(dir, "de")},
			{ID: "nl-big", Country: "NL", Profile: "ips", Kind: config.KindBundle, Dir: filepath.Join(dir, "nl")},
			{ID: "ua-big", Country: "UA", Profile: "ips", Kind: config.KindBundle, Dir: filepath.Join(dir, "ua")},
		}
		c.Cache.Disabled = true
		c.Match.Rate, c.Match.Burst = 1<<30, 1<<30
	}, Options{})
	h := g.srv.Handler()
	tok := g.token(b, "DE", "clinician", "TREAT")
	rng := rand.New(rand.NewPCG(1, 2))

	b.Run("identifier-search", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			k := rng.IntN(n)
			req := httptest.NewRequest(http.MethodGet, fmt.Sprintf("/fhir/Patient?identifier=http://hl7.org/fhir/sid/passport-UKR%%7CP%07d", k), nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			serveOnce(b, h, req, http.StatusOK)
		}
	})
	b.Run("match", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			family, given, birth, gender := benchPerson(rng.IntN(n))
			body := matchBody(fmt.Sprintf(`,"name":[{"family":%q,"given":[%q]}],"birthDate":%q,"gender":%q`,
				latinName(family), latinName(given), birth, gender))
			req := httptest.NewRequest(http.MethodPost, "/fhir/Patient/$match", strings.NewReader(string(body)))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/fhir+json")
			serveOnce(b, h, req, http.StatusOK)
		}
	})
}

// benchSize is the number of patients in each source of BenchmarkMatch.
var benchSize = 100_000
