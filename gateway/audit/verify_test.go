package audit

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/migrant-health/mhg/conformance/r4"

	"github.com/migrant-health/mhg/gateway/audit/chain"
)

var update = flag.Bool("update", false, "rewrite chain/testdata/chain.jsonl")

// chainLines writes n records with a real Log and returns the file's lines,
// newlines included.
func chainLines(t *testing.T, n int) [][]byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l := openLog(t, path, Options{})
	recordN(t, l, n)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(b, []byte("\n"))[:n]
}

func join(lines ...[]byte) []byte { return bytes.Join(lines, nil) }

func TestVerifyNamesTheFirstBrokenRecord(t *testing.T) {
	lines := chainLines(t, 6)
	forged := func() []byte {
		// Turn record 3's failure into a success and give it a hash that
		// matches its new content: the record itself verifies, the link to
		// record 4 does not.
		rec, err := chain.Parse(bytes.TrimSuffix(lines[2], []byte("\n")))
		if err != nil {
			t.Fatal(err)
		}
		event := bytes.Replace(rec.Event, []byte(`"outcome":"8"`), []byte(`"outcome":"0"`), 1)
		if bytes.Equal(event, rec.Event) {
			t.Fatal("record 3 is not a failure; the forgery changes nothing")
		}
		line, _ := chain.Seal(nil, rec.Seq, rec.Time, rec.Prev, event)
		return line
	}
	tests := []struct {
		name     string
		log      []byte
		line     int
		seq      uint64
		reason   string
		records  int
		intactOK bool
	}{
		{name: "intact", log: join(lines...), records: 6, intactOK: true},
		{name: "middle record removed", log: join(lines[0], lines[1], lines[3], lines[4], lines[5]), line: 3, seq: 4, reason: "seq 4 follows seq 2", records: 2},
		{name: "two records swapped", log: join(lines[0], lines[1], lines[3], lines[2], lines[4], lines[5]), line: 3, seq: 4, reason: "seq 4 follows seq 2", records: 2},
		{name: "first record removed", log: join(lines[1:]...), line: 1, seq: 2, reason: "seq 2 follows seq 0", records: 0},
		{name: "record duplicated", log: join(lines[0], lines[1], lines[2], lines[2], lines[3]), line: 4, seq: 3, reason: "seq 3 follows seq 3", records: 3},
		{name: "record rewritten with a fresh hash", log: join(lines[0], lines[1], forged(), lines[3]), line: 4, seq: 4, reason: "prev does not match", records: 3},
		{name: "blank line", log: join(lines[0], []byte("\n"), lines[1]), line: 2, reason: "not a JSON record", records: 1},
		{name: "torn last record", log: join(lines[0], lines[1][:40]), line: 2, reason: "not terminated by a newline", records: 1},
		{name: "last record cut off (undetectable by the chain alone)", log: join(lines[:5]...), records: 5, intactOK: true},
		{name: "empty log", log: nil, records: 0, intactOK: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := Verify(bytes.NewReader(tc.log))
			if rep.Records != tc.records {
				t.Errorf("Records = %d, want %d", rep.Records, tc.records)
			}
			if tc.intactOK {
				if err != nil || !rep.OK() {
					t.Fatalf("Verify = %+v, %v; want intact", rep, err)
				}
				if rep.LastSeq != uint64(tc.records) {
					t.Errorf("LastSeq = %d, want %d", rep.LastSeq, tc.records)
				}
				return
			}
			if !errors.Is(err, ErrChainBroken) || rep.OK() {
				t.Fatalf("Verify = %+v, %v; want ErrChainBroken", rep, err)
			}
			b := rep.Broken
			if b.Line != tc.line || b.Seq != tc.seq || !strings.Contains(b.Reason, tc.reason) {
				t.Errorf("Broken = %+v, want line %d seq %d reason containing %q", b, tc.line, tc.seq, tc.reason)
			}
			if !strings.Contains(err.Error(), b.String()) {
				t.Errorf("error %q does not name %q", err, b)
			}
		})
	}
}

// TestGoldenLog keeps a committed log in chain/testdata (the fuzz seeds of
// package chain, and a check that the format does not drift): it must verify and hold valid R4.
// Regenerate with go test -run TestGoldenLog -update.
func TestGoldenLog(t *testing.T) {
	path := filepath.Join("chain", "testdata", "chain.jsonl")
	if *update {
		if err := os.WriteFile(path, join(chainLines(t, 4)...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(bytes.NewReader(b))
	if err != nil || rep.Records != 4 {
		t.Fatalf("Verify(chain/testdata/chain.jsonl) = %+v, %v", rep, err)
	}
	for i, line := range bytes.SplitAfter(b, []byte("\n"))[:4] {
		rec, err := chain.Parse(bytes.TrimSuffix(line, []byte("\n")))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r4.Parse(rec.Event); err != nil {
			t.Errorf("record %d: %v", i+1, err)
		}
	}
}
