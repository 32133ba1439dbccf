package r4

import (
	"os"
	"testing"
)

// The cost Normalize adds to Parse, against jsonformat alone in the same
// run: a resource without null (the common case, no decoding) and one
// with null placeholders (decoded and re-encoded before jsonformat).
func benchmarkParse(b *testing.B, file string, normalize bool) {
	in, err := os.ReadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	setup()
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if normalize {
			_, err = Parse(in)
		} else {
			_, err = unmarshaller.Unmarshal(in)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

const (
	noNulls   = "testdata/primitive-extensions/patient-example.json"
	withNulls = "testdata/primitive-extensions/form-spec-json-page.json"
)

func BenchmarkParseNoNulls(b *testing.B)         { benchmarkParse(b, noNulls, true) }
func BenchmarkParseNoNullsBaseline(b *testing.B) { benchmarkParse(b, noNulls, false) }
func BenchmarkParseWithNulls(b *testing.B)       { benchmarkParse(b, withNulls, true) }
func BenchmarkNormalizeWithNulls(b *testing.B) {
	in, err := os.ReadFile(withNulls)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		Normalize(in)
	}
}
