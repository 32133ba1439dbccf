package cache

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"
)

// fixturePatient is the part of a Synthea Patient the privacy check looks
// for.
type fixturePatient struct {
	ID         string `json:"id"`
	BirthDate  string `json:"birthDate"`
	Identifier []struct {
		System string `json:"system"`
		Value  string `json:"value"`
	} `json:"identifier"`
	Name []struct {
		Family string   `json:"family"`
		Given  []string `json:"given"`
	} `json:"name"`
	Address []struct {
		Line []string `json:"line"`
	} `json:"address"`
}

// runRealistic drives c the way federate does for the fixture patients:
// identifier resolutions, Patient reads with the patient as tag, a search
// by name and birth date, a negative resolution. It returns the PHI
// strings that must not be found in the store in clear.
func runRealistic(t *testing.T, c *Cache) []string {
	t.Helper()
	f, err := os.Open("testdata/patients.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx := context.Background()
	var phi []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		raw := append([]byte(nil), sc.Bytes()...)
		var p fixturePatient
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatal(err)
		}
		phi = append(phi, p.ID, p.BirthDate, p.Name[0].Family, p.Name[0].Given[0], p.Address[0].Line[0])
		tag := []string{"patient:" + p.ID}
		for _, id := range p.Identifier {
			phi = append(phi, id.Value)
			k := Key{Kind: KindResolve, Source: "us-sample", Parts: []string{id.System, id.Value}, Tags: tag}
			mustFetch(t, c, k, false, newRecorder(p.ID), p.ID)
		}
		k := Key{Kind: KindResource, Source: "us-sample", Version: "us-core@1", Parts: []string{"Patient", p.ID}, Tags: tag}
		mustFetch(t, c, k, false, newRecorder(string(raw)), string(raw))
		q := url.Values{"family": {p.Name[0].Family}, "given": {p.Name[0].Given[0]}, "birthdate": {p.BirthDate}}
		bundle := `{"resourceType":"Bundle","type":"searchset","entry":[{"resource":` + string(raw) + `}]}`
		k = Key{Kind: KindSearch, Source: "us-sample", Version: "us-core@1", Parts: []string{"Patient", q.Encode()}, Tags: tag}
		mustFetch(t, c, k, false, newRecorder(bundle), bundle)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(phi) < 20 {
		t.Fatalf("only %d PHI strings from the fixtures: the check would prove little", len(phi))
	}
	absent := newRecorder("")
	absent.set("", ErrAbsent)
	k := Key{Kind: KindResolve, Source: "de-sample", Parts: []string{"urn:oid:1.2.276.0.76.4.8", "A123456789"}}
	if _, err := c.Fetch(ctx, k, false, absent.load); !errors.Is(err, ErrAbsent) {
		t.Fatalf("negative resolution: %v", err)
	}
	phi = append(phi, "A123456789", "1.2.276.0.76.4.8")
	// Identifiers repeat across fixtures' identifier lists; empty strings
	// would match anything.
	out := phi[:0]
	for _, s := range phi {
		if strings.TrimSpace(s) != "" {
			out = append(out, s)
		}
	}
	return out
}
