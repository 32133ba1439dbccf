package search

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"
)

// FuzzParse: any parameter, modifier and value either parses or returns
// one of the sentinel errors, and a parsed query evaluates without
// panicking on every test resource.
func FuzzParse(f *testing.F) {
	all := loadResources(f)
	for _, s := range [][3]string{
		{"code", "", "http://loinc.org|4548-4"}, {"code", "text", "diab"}, {"onset-date", "", "ge2019-05"},
		{"date", "", "ap2020-01-01T10:00:00.123+02:00"}, {"status", "not", "final,amended"}, {"code", "", `a\,b|c\|d`},
		{"_lastUpdated", "", "lt2024"}, {"category", "", "|x"},
	} {
		f.Add("Condition", s[0], s[1], s[2])
		f.Add("Observation", s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, typ, name, mod, value string) {
		q := New(typ)
		if err := q.Parse(name, mod, value); err != nil {
			if !isSentinel(err) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		for _, rs := range all {
			Apply(q, rs, func(r res) proto.Message { return r.m })
		}
	})
}

// FuzzParseSort: any _sort value either parses or returns a sentinel
// error, and sorting never panics.
func FuzzParseSort(f *testing.F) {
	all := loadResources(f)
	for _, s := range []string{"date", "-date", "onset-date,-_lastUpdated", "-", ",", "--date"} {
		f.Add("Observation", s)
		f.Add("Condition", s)
	}
	f.Fuzz(func(t *testing.T, typ, value string) {
		q := New(typ)
		if err := q.ParseSort(value); err != nil {
			if !isSentinel(err) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		for _, rs := range all {
			Apply(q, rs, func(r res) proto.Message { return r.m })
		}
	})
}

func isSentinel(err error) bool {
	return errors.Is(err, ErrUnknown) || errors.Is(err, ErrUnsupported) || errors.Is(err, ErrInvalid)
}
