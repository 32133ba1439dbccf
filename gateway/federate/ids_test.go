package federate

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

var fhirID = regexp.MustCompile(`^[A-Za-z0-9\-\.]{1,64}$`)

func testCodec(t testing.TB) *IDCodec {
	t.Helper()
	c, err := NewIDCodec([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestIDCodecRoundTrip(t *testing.T) {
	t.Parallel()
	c := testCodec(t)
	tests := []struct {
		name, source, typ, id string
	}{
		{"uuid", "us-sample", "Patient", "8de41d0d-0ae7-4cb6-97e2-900b07a1e4f7"},
		{"short", "de-sample", "Condition", "c1"},
		{"upper-case uuid", "de", "Patient", "8DE41D0D-0AE7-4CB6-97E2-900B07A1E4F7"},
		{"max source", "abcdefghijklmnop", "Observation", "obs-123456789012345678"},
		{"dots and dashes", "nl-sample", "Patient", "a.b-c.d"},
		{"mixed-case uuid packed", "d", "Patient", "8De41d0d-0ae7-4cb6-97e2-900b07a1e4f7"},
		{"long id packed", "de-sample", "Patient", "patient-0123456789-abcdefghij-KLMNOPQ"},
		{"non-FHIR characters stay raw", "de", "Patient", "a_b"},
		{"derived from a uuid", "us-sample", "Observation", "8de41d0d-0ae7-4cb6-97e2-900b07a1e4f7/migration-context"},
		{"derived twice", "us-sample", "Provenance", "8de41d0d-0ae7-4cb6-97e2-900b07a1e4f7/migration-context/provenance"},
		{"derived from a short id", "de-sample", "Observation", "amina/migration-context"},
		{"unknown kind stays raw", "de", "Observation", "x/other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw, err := c.Encode(tt.source, tt.typ, tt.id)
			if err != nil {
				t.Fatal(err)
			}
			if !fhirID.MatchString(gw) {
				t.Fatalf("%q is not a valid FHIR id", gw)
			}
			if strings.Contains(gw, tt.id) {
				t.Fatalf("gateway id %q contains the upstream id", gw)
			}
			again, _ := c.Encode(tt.source, tt.typ, tt.id)
			if again != gw {
				t.Fatalf("not stable: %q then %q", gw, again)
			}
			src, up, err := c.Decode(tt.typ, gw)
			if err != nil {
				t.Fatal(err)
			}
			if src != tt.source || up != tt.id {
				t.Fatalf("Decode = %q, %q; want %q, %q", src, up, tt.source, tt.id)
			}
		})
	}
}

func TestIDCodecRejects(t *testing.T) {
	t.Parallel()
	c := testCodec(t)
	gw, err := c.Encode("de-sample", "Patient", "p1")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewIDCodec([]byte(strings.Repeat("z", 32)))
	flip := []byte(gw)
	last := len(flip) - 1
	if flip[last] == 'A' {
		flip[last] = 'B'
	} else {
		flip[last] = 'A'
	}
	tests := []struct {
		name, typ, id string
		codec         *IDCodec
	}{
		{"other type", "Condition", gw, c},
		{"other key", "Patient", gw, other},
		{"tampered", "Patient", string(flip), c},
		{"other source", "Patient", "nl-sample" + gw[len("de-sample"):], c},
		{"no dot", "Patient", "abc", c},
		{"empty", "Patient", "", c},
		{"bad alphabet", "Patient", "de.!!!!", c},
		{"too short", "Patient", "de.AAAA", c},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := tt.codec.Decode(tt.typ, tt.id); !errors.Is(err, ErrBadID) {
				t.Fatalf("Decode error = %v, want ErrBadID", err)
			}
		})
	}
}

func TestIDCodecDistinctTypes(t *testing.T) {
	t.Parallel()
	c := testCodec(t)
	a, _ := c.Encode("de", "Patient", "x1")
	b, _ := c.Encode("de", "Condition", "x1")
	if a == b {
		t.Fatal("the same upstream id in two types must give two gateway ids")
	}
}

func TestIDCodecTooLong(t *testing.T) {
	t.Parallel()
	c := testCodec(t)
	// An upstream id of any length gets an id (idtable.go); only a source
	// id that leaves no room for a digest id cannot.
	if _, err := c.Encode(strings.Repeat("s", 42), "Patient", strings.Repeat("x", 40)); !errors.Is(err, ErrIDTooLong) {
		t.Fatalf("err = %v, want ErrIDTooLong", err)
	}
}

func TestNewIDCodecShortKey(t *testing.T) {
	t.Parallel()
	if _, err := NewIDCodec([]byte("short")); err == nil {
		t.Fatal("a short key must be refused")
	}
}

func FuzzIDDecode(f *testing.F) {
	c := testCodec(f)
	gw, _ := c.Encode("de-sample", "Patient", "p1")
	f.Add("Patient", gw)
	f.Add("Patient", "de.")
	f.Add("Condition", "x.AAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, typ, id string) {
		src, up, err := c.Decode(typ, id)
		if err != nil {
			return
		}
		back, err := c.Encode(src, typ, up)
		if err != nil || back != id {
			t.Fatalf("decoded id %q does not re-encode to itself (%q, %v)", id, back, err)
		}
	})
}
