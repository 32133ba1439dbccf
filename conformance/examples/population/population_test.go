package population

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/mappings"
)

var demo = []Options{
	{Seed: 1, Patients: 300, Source: "de-sample", Country: "DE", Profile: "de-basis"},
	{Seed: 1, Patients: 300, Source: "nl-sample", Country: "NL", Profile: "nl-core"},
	{Seed: 1, Patients: 300, Source: "ua-sample", Country: "UA", Profile: "ips"},
	{Seed: 1, Patients: 300, Source: "us-sample", Country: "US", Profile: "us-core"},
}

// Same seed, same bytes; another seed, another population; a smaller
// population is the start of a larger one.
func TestDeterministic(t *testing.T) {
	a, _ := NDJSON(demo[0])
	b, _ := NDJSON(demo[0])
	if !bytes.Equal(a, b) {
		t.Fatal("two runs with one seed differ")
	}
	other := demo[0]
	other.Seed = 2
	c, _ := NDJSON(other)
	if bytes.Equal(a, c) {
		t.Fatal("two seeds give the same population")
	}
	small := demo[0]
	small.Patients = 100
	s, _ := NDJSON(small)
	if !bytes.HasPrefix(a, s) {
		t.Fatal("a smaller population is not the start of a larger one")
	}
}

// Every resource is valid R4 and maps into the MHP through its profile;
// screening answers become migration contexts.
func TestResourcesMap(t *testing.T) {
	eng, err := mappings.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, opts := range append(demo, withRoutine(demo)...) {
		contexts, tb, mcv := 0, 0, 0
		for _, p := range People(opts) {
			rs, err := Resources(opts, p)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range rs {
				if _, err := r4.Parse(b); err != nil {
					t.Fatalf("%s: %v\n%s", opts.Source, err, b)
				}
				res, err := eng.Map(opts.Profile, b, mappings.Options{SourceID: opts.Source, Country: opts.Country})
				if err != nil {
					t.Fatalf("%s: map: %v\n%s", opts.Source, err, b)
				}
				for _, o := range res.Outputs {
					if o.Class == mappings.ClassSensitive {
						contexts++
					}
				}
			}
			for _, c := range p.Conditions {
				if c.Kind == TB {
					tb++
				}
			}
			mcv += len(p.Vaccinations)
		}
		if contexts == 0 || mcv == 0 {
			t.Errorf("%s: %d migration contexts, %d vaccinations: the demo needs both", opts.Source, contexts, mcv)
		}
		t.Logf("%s: %d contexts, %d tb, %d vaccinations", opts.Source, contexts, tb, mcv)
	}
}

func withRoutine(opts []Options) []Options {
	var out []Options
	for _, o := range opts {
		o.Routine, o.Patients = true, 100
		out = append(out, o)
	}
	return out
}

// Routine care makes about ten resources a person and leaves every other
// fact of a person as it was.
func TestRoutine(t *testing.T) {
	for _, opts := range withRoutine(demo) {
		opts.Patients = 2000
		plain := opts
		plain.Routine = false
		n, visits, vaccines := 0, 0, 0
		for i := range opts.Patients {
			p, q := Generate(opts, i), Generate(plain, i)
			rs, err := Resources(opts, p)
			if err != nil {
				t.Fatal(err)
			}
			n += len(rs)
			visits += len(p.Visits)
			vaccines += len(p.Vaccines)
			if len(q.Visits)+len(q.Vaccines) > 0 {
				t.Fatalf("%s: routine care without Routine", opts.Source)
			}
			kept := p
			kept.Visits, kept.Vaccines, kept.Conditions = nil, nil, nil
			for _, c := range p.Conditions {
				if c.Kind != Hypertension && c.Kind != Asthma {
					kept.Conditions = append(kept.Conditions, c)
				}
			}
			if fmt.Sprint(kept) != fmt.Sprint(q) {
				t.Fatalf("%s person %d: Routine changed other facts:\n%+v\n%+v", opts.Source, i, kept, q)
			}
		}
		per := float64(n) / float64(opts.Patients)
		if per < 9 || per > 12 {
			t.Errorf("%s: %.1f resources a person, want about 10", opts.Source, per)
		}
		if visits == 0 || vaccines == 0 {
			t.Errorf("%s: %d visits, %d vaccines", opts.Source, visits, vaccines)
		}
		t.Logf("%s: %.2f resources a person", opts.Source, per)
	}
}

func BenchmarkGenerate(b *testing.B) {
	opts := demo[0]
	opts.Patients = 1000
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NDJSON(opts); err != nil {
			b.Fatal(err)
		}
	}
}
