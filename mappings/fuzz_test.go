package mappings

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/migrant-health/mhg/conformance/r4"
)

// FuzzMap feeds national resources (the fixtures as seeds) to every
// profile. Whatever the input, Map must not panic and must fail only with
// its sentinel errors; for valid R4 input every output must be valid R4,
// and a Patient output must hold no firewalled identifier or extension.
func FuzzMap(f *testing.F) {
	e := testEngine(f)
	profiles := e.Profiles()
	for i, p := range profiles {
		for _, file := range inputFiles(f, p) {
			for _, res := range fixtureResources(f, readFixture(f, file)) {
				f.Add(uint8(i), res)
			}
		}
	}
	f.Add(uint8(0), []byte(`{"resourceType":"Patient","extension":[{"url":1}],"identifier":[7,{"system":{}}],"_birthDate":[]}`))
	f.Add(uint8(1), []byte(`{"resourceType":"Observation","code":{"coding":[{"system":"http://loinc.org","code":"93027-1"}]},"valueString":"yes"}`))
	f.Fuzz(func(t *testing.T, pi uint8, in []byte) {
		profile := profiles[int(pi)%len(profiles)]
		res, err := e.Map(profile, in, testOptions(profile))
		if err != nil {
			if !errors.Is(err, ErrNotMappable) {
				t.Fatalf("error without sentinel: %v", err)
			}
			return
		}
		if _, err := r4.Parse(in); err != nil {
			return
		}
		p := e.plans[profile]
		for _, out := range res.Outputs {
			if _, err := r4.Parse(out.JSON); err != nil {
				t.Fatalf("valid %s input gave an invalid %s output: %v\ninput:  %s\noutput: %s", profile, out.Type, err, in, out.JSON)
			}
			if out.Type != "Patient" {
				continue
			}
			o, err := decodeObject(out.JSON)
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range objects(o["identifier"]) {
				var types []codingKey
				for _, c := range objects(getObj(id, "type")["coding"]) {
					types = append(types, codingKey{getStr(c, "system"), getStr(c, "code")})
				}
				if c := p.reg.classify(getStr(id, "system"), types); c == nil || c.action != idKeep {
					t.Fatalf("Patient output carries identifier system %s", getStr(id, "system"))
				}
			}
			eachExtension(o, func(url string) {
				if r := p.ext[url]; r == nil || r.Action == actFirewall || r.Action == actOriginOnly {
					t.Fatalf("Patient output carries extension %s", url)
				}
			})
		}
	})
}

// FuzzReadTree: whenever the tree reader reads a document, it reads what
// encoding/json (with UseNumber) reads.
func FuzzReadTree(f *testing.F) {
	addFixtureFiles(f)
	for _, s := range []string{`{"a":"\ud83d\ude00 \ud83d x \u00e9\"\\\/\b\f\n\r\t","n":[-0.5e+3,0,1E2,12.25],"t":true,"f":false,"z":null}`,
		"{\"a\":\"\xff\xfe ok\"}", `{"a":1,"a":2}`, `{"a":"\udc00\ud800"}`, `[1,2]`, `"s"`, `01`, `{"a":1} x`, `{"a":[{},[]]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := readTree(in)
		if err != nil {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(in))
		dec.UseNumber()
		var want any
		if err := dec.Decode(&want); err != nil {
			t.Fatalf("read %q, which encoding/json refuses: %v", in, err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			t.Fatalf("read %q, which has data after its value for encoding/json", in)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("%q: (-encoding/json +tree)\n%s", in, diff)
		}
	})
}

// FuzzReadFields checks that readFields reads what readTree reads, member
// for member, and fails exactly where readTree fails (or reads something
// else than an object).
func FuzzReadFields(f *testing.F) {
	addFixtureFiles(f)
	for _, s := range []string{`{"a":"\ud83d\ude00 x","n":[-0.5e+3,0,1E2],"t":true,"f":false,"z":null}`, `{"ab":1,"ab":{"c":[]}}`,
		`{"a":1} x`, `[1]`, `{"ab":{"modifierExtension":[]}}`, `{"ab":{"x\u0079":"\q"}}`, `{"ab":"` + "\x01" + `"}`, `{}`, ` { "a" : 01 }`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		keep := func(k string) bool { return len(k)%2 == 1 }
		got, err := readFields(in, keep)
		v, errTree := readTree(in)
		whole, isObject := v.(object)
		if (err == nil) != (errTree == nil && isObject) {
			t.Fatalf("%q: readFields error %v, readTree error %v", in, err, errTree)
		}
		if err != nil {
			return
		}
		for k, w := range whole {
			if g, ok := got[k]; keep(k) && (!ok || !cmp.Equal(g, w)) {
				t.Fatalf("%q: member %q read as %v, readTree %v", in, k, g, w)
			}
		}
		for k := range got {
			if _, ok := whole[k]; !ok {
				t.Fatalf("%q: member %q not in readTree's object", in, k)
			}
		}
	})
}
