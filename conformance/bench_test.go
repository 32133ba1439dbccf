package conformance

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/migrant-health/mhg/conformance/r4"
)

// documentOf grows the example document to n entries with more problems,
// each listed in the problems section.
func documentOf(t testing.TB, n int) []byte {
	t.Helper()
	var d map[string]any
	if err := json.Unmarshal(readTestdata(t, "mhp/bundle.json"), &d); err != nil {
		t.Fatal(err)
	}
	entries := d["entry"].([]any)
	comp := entries[0].(map[string]any)["resource"].(map[string]any)
	problems := comp["section"].([]any)[0].(map[string]any)
	var cond map[string]any
	if err := json.Unmarshal(readTestdata(t, "mhp/condition.json"), &cond); err != nil {
		t.Fatal(err)
	}
	for i := len(entries); i < n; i++ {
		c := map[string]any{}
		for k, v := range cond {
			c[k] = v
		}
		id := fmt.Sprintf("cond-%d", i)
		c["id"] = id
		entries = append(entries, map[string]any{"fullUrl": "https://mhg.example.org/fhir/Condition/" + id, "resource": c})
		problems["entry"] = append(problems["entry"].([]any), map[string]any{"reference": "Condition/" + id})
	}
	d["entry"] = entries
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDocumentOf50IsValid(t *testing.T) {
	b := documentOf(t, 50)
	var d struct {
		Entry []any `json:"entry"`
	}
	if err := json.Unmarshal(b, &d); err != nil || len(d.Entry) != 50 {
		t.Fatalf("want 50 entries, got %d (%v)", len(d.Entry), err)
	}
	if issues := newChecker(t, Options{Require: true}).Check(b); len(issues) != 0 {
		t.Errorf("issues:\n%s", render(issues))
	}
}

// BenchmarkCheck compares the checker (R4 parse plus profiles) with
// r4.Parse alone, the baseline it is built on. The ratio check/parse is
// the cost of the profile layer.
func BenchmarkCheck(b *testing.B) {
	inputs := []struct {
		name string
		data []byte
	}{
		{"patient", readTestdata(b, "mhp/patient.json")},
		{"bundle50", documentOf(b, 50)},
	}
	c := newChecker(b, Options{Require: true})
	for _, in := range inputs {
		b.Run(in.name+"/parse-baseline", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in.data)))
			for b.Loop() {
				if _, err := r4.Parse(in.data); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(in.name+"/check", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in.data)))
			for b.Loop() {
				if issues := c.Check(in.data); len(issues) != 0 {
					b.Fatal(issues)
				}
			}
		})
		b.Run(in.name+"/profiles-only", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in.data)))
			for b.Loop() {
				if issues := c.checkTree(in.data); len(issues) != 0 {
					b.Fatal(issues)
				}
			}
		})
	}
}

func BenchmarkNewChecker(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := compile(); err != nil {
			b.Fatal(err)
		}
	}
}
