package chain

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// synthetic returns the lines of an n-record chain with small events.
func synthetic(n int) [][]byte {
	var (
		lines [][]byte
		prev  string
	)
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	for i := 1; i <= n; i++ {
		ev := fmt.Appendf(nil, `{"resourceType":"AuditEvent","id":"e%d","outcome":"0"}`, i)
		line, hash := Seal(nil, uint64(i), at.Add(time.Duration(i)*time.Second).Format(TimeLayout), prev, ev)
		lines = append(lines, line)
		prev = hash
	}
	return lines
}

func TestSealAndParse(t *testing.T) {
	lines := synthetic(2)
	r1, err := Parse(bytes.TrimSuffix(lines[0], []byte("\n")))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := Parse(bytes.TrimSuffix(lines[1], []byte("\n")))
	if err != nil {
		t.Fatal(err)
	}
	if r1.Seq != 1 || r1.Prev != "" || r2.Seq != 2 || r2.Prev != r1.Hash || string(r2.Event) != `{"resourceType":"AuditEvent","id":"e2","outcome":"0"}` {
		t.Errorf("records %+v %+v", r1, r2)
	}
	if want := Hash(AppendCanonical(nil, 1, r1.Time, "", r1.Event)); r1.Hash != want {
		t.Errorf("hash %s, want %s", r1.Hash, want)
	}
	if !strings.HasPrefix(string(lines[0]), `{"seq":1,"time":"2026-11-28T10:00:01.000000000Z","prev":"","hash":"`) {
		t.Errorf("line layout changed: %s", lines[0])
	}
}

func TestParseRejects(t *testing.T) {
	good := string(bytes.TrimSuffix(synthetic(1)[0], []byte("\n")))
	tests := []struct {
		name, line, reason string
	}{
		{"not JSON", "seq=1", "not a JSON record"},
		{"array", "[]", "not a JSON record"},
		{"unknown member", strings.Replace(good, `{"seq"`, `{"x":1,"seq"`, 1), "not a JSON record"},
		{"missing hash", `{"seq":1,"time":"2026-11-28T10:00:01.000000000Z","prev":"","event":{}}`, "no hash"},
		{"event not an object", `{"seq":1,"time":"2026-11-28T10:00:01.000000000Z","prev":"","hash":"` + strings.Repeat("a", 64) + `","event":[1]}`, "event is not a JSON object"},
		{"space after colon", strings.Replace(good, `"seq":1`, `"seq": 1`, 1), "canonical form"},
		{"escaped time", strings.Replace(good, `"time":"2026`, `"time":"\u0032026`, 1), "canonical form"},
		{"local time", strings.Replace(good, `.000000000Z"`, `.000000000+01:00"`, 1), "time is not in the record time format"},
		{"short hash", `{"seq":1,"time":"2026-11-28T10:00:01.000000000Z","prev":"","hash":"abc","event":{}}`, "hash is not 64 hex"},
		{"upper-case prev", `{"seq":2,"time":"2026-11-28T10:00:01.000000000Z","prev":"` + strings.Repeat("A", 64) + `","hash":"` + strings.Repeat("a", 64) + `","event":{}}`, "prev is not"},
		{"edited event", strings.Replace(good, `"outcome":"0"`, `"outcome":"4"`, 1), "hash does not match"},
		{"trailing data", good + " {}", "trailing data"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.line))
			if err == nil || !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("Parse = %v, want an error about %q", err, tc.reason)
			}
		})
	}
}

// TestVerifyCatchesEveryByteOfAMiddleRecord changes each byte of record 3
// in turn; every change must break the chain at line 3.
func TestVerifyCatchesEveryByteOfAMiddleRecord(t *testing.T) {
	lines := synthetic(5)
	prefix := bytes.Join(lines[:2], nil)
	suffix := bytes.Join(lines[3:], nil)
	for i := range lines[2] {
		for _, flip := range []byte{0x01, 0x20, 0x80} {
			mid := bytes.Clone(lines[2])
			mid[i] ^= flip
			rep, err := Verify(bytes.NewReader(bytes.Join([][]byte{prefix, mid, suffix}, nil)))
			if !errors.Is(err, ErrBroken) || rep.Broken == nil || rep.Broken.Line != 3 || rep.Records != 2 {
				t.Fatalf("byte %d (%q) ^ %#x: Verify = %+v, %v; want a break at line 3 after 2 intact records",
					i, lines[2][i], flip, rep.Broken, err)
			}
		}
	}
}

func TestVerifyLineTooLong(t *testing.T) {
	long := append(bytes.Repeat([]byte("x"), MaxLineBytes+1), '\n')
	rep, err := Verify(bytes.NewReader(long))
	if !errors.Is(err, ErrBroken) || rep.Broken.Line != 1 || !strings.Contains(rep.Broken.Reason, "longer") {
		t.Errorf("Verify = %+v, %v; want a too-long break at line 1", rep.Broken, err)
	}
}

func TestVerifyReadError(t *testing.T) {
	boom := errors.New("disk gone")
	_, err := Verify(&failingReader{data: synthetic(1)[0], err: boom})
	if !errors.Is(err, boom) || errors.Is(err, ErrBroken) {
		t.Errorf("Verify = %v, want the read error and no chain break", err)
	}
}

type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestScanReportsOffsets(t *testing.T) {
	lines := synthetic(3)
	var offs []int64
	rep, err := Scan(bytes.NewReader(bytes.Join(lines, nil)), func(rec Record, off int64, n int) {
		if n != len(lines[rec.Seq-1]) {
			t.Errorf("record %d: length %d, want %d", rec.Seq, n, len(lines[rec.Seq-1]))
		}
		offs = append(offs, off)
	})
	if err != nil || rep.Records != 3 {
		t.Fatalf("Scan = %+v, %v", rep, err)
	}
	if offs[0] != 0 || offs[1] != int64(len(lines[0])) || offs[2] != int64(len(lines[0])+len(lines[1])) {
		t.Errorf("offsets %v", offs)
	}
}

func TestGoldenVerifies(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "chain.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := Verify(bytes.NewReader(b)); err != nil || rep.Records != 4 {
		t.Errorf("Verify(testdata/chain.jsonl) = %+v, %v", rep, err)
	}
}
