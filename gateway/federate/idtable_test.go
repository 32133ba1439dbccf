package federate

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/migrant-health/mhg/gateway/cache"
	"github.com/migrant-health/mhg/gateway/internal/redistest"
)

// Upstream ids as real servers write them: FHIR allows 64 characters.
var (
	id48 = "urn-oid-1.2.276.0.76.4.8-condition-000000000042a"[:48]
	id64 = strings.Repeat("0123456789abcdef", 4)
)

func TestLongIDsRoundTrip(t *testing.T) {
	t.Parallel()
	c := testCodec(t)
	tests := []struct{ name, source, typ, id string }{
		{"48 characters", "de-sample", "Condition", id48},
		{"64 characters", "de-sample", "Patient", id64},
		{"64 characters, 16-character source", "abcdefghijklmnop", "Immunization", id64},
		{"41 characters, 16-character source", "abcdefghijklmnop", "Observation", id64[:41]},
		{"derived from a long id", "de-sample", "Observation", id64 + "/migration-context"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.id) < 41 {
				t.Fatal("not a long id")
			}
			gw, err := c.Encode(tt.source, tt.typ, tt.id)
			if err != nil {
				t.Fatal(err)
			}
			if !fhirID.MatchString(gw) || !strings.HasPrefix(gw, tt.source+".") {
				t.Fatalf("%q is not a valid gateway id", gw)
			}
			if strings.Contains(gw, tt.id[:16]) {
				t.Fatalf("gateway id %q shows the upstream id", gw)
			}
			if again, _ := c.Encode(tt.source, tt.typ, tt.id); again != gw {
				t.Fatalf("not stable: %q then %q", gw, again)
			}
			src, up, err := c.Decode(tt.typ, gw)
			if err != nil || src != tt.source || up != tt.id {
				t.Fatalf("Decode = %q, %q, %v", src, up, err)
			}
			if _, _, err := c.Decode("Encounter", gw); !errors.Is(err, ErrBadID) {
				t.Fatalf("decoded as another type: %v", err)
			}
		})
	}
	// Ids that fit keep today's reversible form: no table needed.
	short, _ := c.Encode("de-sample", "Patient", "p1")
	fresh := testCodec(t)
	if _, up, err := fresh.Decode("Patient", short); err != nil || up != "p1" {
		t.Fatalf("a short id needs the table: %v", err)
	}
}

// Two gateways with the same key mint the same ids; a gateway that never
// minted a long id resolves it through the shared store; a lost table
// is rebuilt by minting again; a forged entry resolves to nothing.
func TestLongIDsAcrossReplicas(t *testing.T) {
	t.Parallel()
	srv := redistest.Run(t, false)
	store, err := cache.NewRedisStore(cache.RedisOptions{URL: srv.URL(), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	key := []byte(strings.Repeat("k", 32))
	a, err := NewIDCodecTable(key, IDTableOptions{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewIDCodecTable(key, IDTableOptions{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := a.Encode("de-kbv", "Patient", id64)
	if err != nil {
		t.Fatal(err)
	}
	if gwB, _ := b.Encode("de-kbv", "Patient", id64); gwB != gw {
		t.Fatalf("replicas mint %q and %q", gw, gwB)
	}
	c, _ := NewIDCodecTable(key, IDTableOptions{Store: store})
	if _, up, err := c.Decode("Patient", gw); err != nil || up != id64 {
		t.Fatalf("a replica that never minted the id: %q, %v", up, err)
	}

	ctx := context.Background()
	raw, err := store.Get(ctx, idTablePrefix+gw)
	if err != nil || raw == nil {
		t.Fatalf("no table entry: %v", err)
	}
	if bytes.Contains(raw, []byte(id64[:8])) {
		t.Fatal("the table holds the upstream id in clear")
	}

	// Lost: a fresh replica cannot resolve it until it is minted again.
	if err := store.Delete(ctx, idTablePrefix+gw); err != nil {
		t.Fatal(err)
	}
	d, _ := NewIDCodecTable(key, IDTableOptions{Store: store})
	if _, _, err := d.Decode("Patient", gw); !errors.Is(err, ErrBadID) {
		t.Fatalf("resolved without an entry: %v", err)
	}
	if again, _ := d.Encode("de-kbv", "Patient", id64); again != gw {
		t.Fatal("minted another id after the loss")
	}
	e, _ := NewIDCodecTable(key, IDTableOptions{Store: store})
	if _, up, err := e.Decode("Patient", gw); err != nil || up != id64 {
		t.Fatalf("not rebuilt by use: %q, %v", up, err)
	}

	// Forged: an entry that is another id's sealed value does not move
	// the id.
	other, _ := a.Encode("de-kbv", "Patient", strings.Repeat("f", 64))
	forged, _ := store.Get(ctx, idTablePrefix+other)
	if err := store.Set(ctx, idTablePrefix+gw, forged, time.Hour, nil); err != nil {
		t.Fatal(err)
	}
	f, _ := NewIDCodecTable(key, IDTableOptions{Store: store})
	if _, up, err := f.Decode("Patient", gw); !errors.Is(err, ErrBadID) {
		t.Fatalf("a forged entry resolved to %q", up)
	}
	// Another key reads nothing.
	z, _ := NewIDCodecTable([]byte(strings.Repeat("z", 32)), IDTableOptions{Store: store})
	if _, _, err := z.Decode("Patient", other); !errors.Is(err, ErrBadID) {
		t.Fatalf("another key resolved the id: %v", err)
	}
}

// Any legal FHIR id from any source (ids of at most 16 characters) gets a
// gateway id of at most 64 characters that decodes back to it.
func FuzzIDRoundTrip(f *testing.F) {
	c := testCodec(f)
	for _, s := range []string{"p1", id48, id64, "8de41d0d-0ae7-4cb6-97e2-900b07a1e4f7", strings.Repeat(".", 64)} {
		f.Add("abcdefghijklmnop", s)
	}
	f.Fuzz(func(t *testing.T, source, id string) {
		if !fhirID.MatchString(id) || source == "" || len(source) > 16 || strings.Trim(source, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
			return
		}
		gw, err := c.Encode(source, "Condition", id)
		if err != nil {
			t.Fatalf("Encode(%q, %q): %v", source, id, err)
		}
		if !fhirID.MatchString(gw) {
			t.Fatalf("gateway id %q", gw)
		}
		src, up, err := c.Decode("Condition", gw)
		if err != nil || src != source || up != id {
			t.Fatalf("Decode(%q) = %q, %q, %v; want %q, %q", gw, src, up, err, source, id)
		}
	})
}
