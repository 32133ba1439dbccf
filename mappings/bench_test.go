package mappings

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/migrant-health/mhg/conformance/r4"
)

// Benchmarks of the mapping path, split into its three costs:
//
//	parse    r4.Parse of the national input (validation, as sources do)
//	map      Engine.Map
//	marshal  r4.Parse + r4.Marshal of the MHP output (what a caller does
//	         to cache or serve it as a proto)
//
// and the baseline: google/fhir parse + marshal of the input alone, the
// cost any FHIR gateway pays. The pipeline benchmark reports resources/s
// and its ratio to the baseline.

func benchInputs(b *testing.B) (patient []byte, bundle [][]byte) {
	b.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "us-core", "in", "marcos-delagarza.json"))
	if err != nil {
		b.Fatal(err)
	}
	all := fixtureResources(b, raw)
	for _, r := range all {
		if cr, err := r4.Parse(r); err == nil && r4.TypeName(cr) == "Patient" {
			patient = r
		}
	}
	for len(bundle) < 50 {
		bundle = append(bundle, all[len(bundle)%len(all)])
	}
	if patient == nil {
		b.Fatal("no Synthea Patient in the fixture")
	}
	return patient, bundle
}

func mapOne(b *testing.B, e *Engine, in []byte) []Output {
	res, err := e.Map("us-core", in, Options{SourceID: "bench", ID: testID})
	if err != nil {
		b.Fatal(err)
	}
	return res.Outputs
}

func parseMarshal(b *testing.B, in []byte) {
	cr, err := r4.Parse(in)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := r4.Marshal(cr); err != nil {
		b.Fatal(err)
	}
}

func benchStages(b *testing.B, inputs [][]byte) {
	e := testEngine(b)
	outs := make([][]Output, len(inputs))
	for i, in := range inputs {
		outs[i] = mapOne(b, e, in)
	}
	n := float64(len(inputs))
	perResource := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/resource")
	}
	b.Run("parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, in := range inputs {
				if _, err := r4.Parse(in); err != nil {
					b.Fatal(err)
				}
			}
		}
		perResource(b)
	})
	b.Run("map", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, in := range inputs {
				mapOne(b, e, in)
			}
		}
		perResource(b)
	})
	b.Run("marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, o := range outs {
				for _, out := range o {
					parseMarshal(b, out.JSON)
				}
			}
		}
		perResource(b)
	})
	b.Run("baseline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, in := range inputs {
				parseMarshal(b, in)
			}
		}
		perResource(b)
	})
	// pipeline runs parse, map and marshal and, interleaved, the baseline,
	// so the ratio compares the two under the same machine load.
	b.Run("pipeline", func(b *testing.B) {
		b.ReportAllocs()
		var pipe, base time.Duration
		for b.Loop() {
			t0 := time.Now()
			for _, in := range inputs {
				if _, err := r4.Parse(in); err != nil {
					b.Fatal(err)
				}
				for _, out := range mapOne(b, e, in) {
					parseMarshal(b, out.JSON)
				}
			}
			t1 := time.Now()
			for _, in := range inputs {
				parseMarshal(b, in)
			}
			pipe += t1.Sub(t0)
			base += time.Since(t1)
		}
		b.ReportMetric(n*float64(b.N)/pipe.Seconds(), "resources/s")
		b.ReportMetric(pipe.Seconds()/base.Seconds(), "x-baseline")
	})
}

// BenchmarkMapPatient: one Synthea-sized Patient (race, ethnicity, birth
// sex, five identifiers, address with geolocation).
func BenchmarkMapPatient(b *testing.B) {
	p, _ := benchInputs(b)
	benchStages(b, [][]byte{p})
}

// BenchmarkMapBundle50: the 50 entries of a trimmed Synthea Bundle
// (Patient, Conditions, Observations, Immunizations, ...), one by one.
func BenchmarkMapBundle50(b *testing.B) {
	_, bundle := benchInputs(b)
	benchStages(b, bundle)
}

// BenchmarkCodeRule: translating one national ICD-10 code by rule (a walk
// up the code over the WHO code list) next to the baseline of a ConceptMap
// lookup of one listed code.
func BenchmarkCodeRule(b *testing.B) {
	e := testEngine(b)
	var cm *conceptMap
	for _, r := range e.plans["us-core"].translate["Condition"] {
		for _, m := range r.maps {
			if m.id == "icd-10-cm-to-icd-10" {
				cm = m
			}
		}
	}
	if cm == nil {
		b.Fatal("no ICD-10-CM code rule")
	}
	for _, tc := range []struct{ name, code string }{{"rule-equivalent", "E11.9"}, {"rule-wider-4-levels", "S72.001A"}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if trs, _ := cm.lookup(sysCM, tc.code); len(trs) != 1 {
					b.Fatal(trs)
				}
			}
		})
	}
	b.Run("baseline-conceptmap", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if trs, _ := cm.rule.exceptions.lookup(sysCM, "E11.00"); len(trs) != 1 {
				b.Fatal(trs)
			}
		}
	})
}

// BenchmarkLoad: compiling the built-in specs, and the part of it that
// reads the WHO ICD-10 code list.
func BenchmarkLoad(b *testing.B) {
	b.Run("engine", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Load(); err != nil {
				b.Fatal(err)
			}
		}
	})
	raw, err := fs.ReadFile(Specs, "common/codelists/icd-10-who.txt")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("who-code-list", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := loadCodeList("icd-10-who.txt", raw); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkMapSelected: the gender and birth date of a US Core Patient
// (what a statistic by sex and age reads) next to its baseline in the same
// run, the whole Patient mapped as trees.
func BenchmarkMapSelected(b *testing.B) {
	p, _ := benchInputs(b)
	e := testEngine(b)
	opts := Options{SourceID: "bench", ID: testID, Tree: true}
	sel := Select("gender", "birthDate")
	b.Run("baseline-map", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.Map("us-core", p, opts); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("selected", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.MapSelected("us-core", p, opts, sel); err != nil {
				b.Fatal(err)
			}
		}
	})
}
