package chain

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func goldenLines(f *testing.F) [][]byte {
	f.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "chain.jsonl"))
	if err != nil {
		f.Fatal(err)
	}
	return bytes.SplitAfter(b, []byte("\n"))
}

// FuzzParse feeds arbitrary lines to the record parser: it must not panic,
// and a line it accepts must be canonical (re-rendering gives the same
// bytes) and carry the hash of its own content.
func FuzzParse(f *testing.F) {
	for _, l := range goldenLines(f) {
		f.Add(bytes.TrimSuffix(l, []byte("\n")))
	}
	for _, l := range synthetic(2) {
		f.Add(bytes.TrimSuffix(l, []byte("\n")))
	}
	f.Add([]byte(`{"seq":1,"time":"2026-01-01T00:00:00.000000000Z","prev":"","hash":"","event":{}}`))
	f.Add([]byte(`{"seq":-1}`))
	f.Add([]byte(`{"seq":1,"seq":2}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, line []byte) {
		rec, err := Parse(line)
		if err != nil {
			return
		}
		if got := AppendLine(nil, rec.Seq, rec.Time, rec.Prev, rec.Hash, rec.Event); !bytes.Equal(got, append(bytes.Clone(line), '\n')) {
			t.Fatalf("accepted a line that does not re-render to itself:\n%q\n%q", line, got)
		}
		if Hash(AppendCanonical(nil, rec.Seq, rec.Time, rec.Prev, rec.Event)) != rec.Hash {
			t.Fatal("accepted a line whose hash does not match")
		}
	})
}

// FuzzVerify feeds arbitrary logs to Verify: no panic, a break always names
// a line of the input consistent with the intact count, and an intact
// report counts every line.
func FuzzVerify(f *testing.F) {
	lines := goldenLines(f)
	f.Add(bytes.Join(lines, nil))
	f.Add(bytes.Join([][]byte{lines[0], lines[2]}, nil))
	f.Add(bytes.Join([][]byte{lines[1], lines[0]}, nil))
	f.Add(lines[0][:len(lines[0])/2])
	f.Add(bytes.Join(synthetic(3), nil))
	f.Add([]byte("\n\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, log []byte) {
		rep, err := Verify(bytes.NewReader(log))
		n := bytes.Count(log, []byte("\n"))
		if err == nil {
			if !rep.OK() || rep.Records != n || (len(log) > 0 && log[len(log)-1] != '\n') {
				t.Fatalf("intact report %+v for %d lines", rep, n)
			}
			return
		}
		if !errors.Is(err, ErrBroken) || rep.Broken == nil {
			t.Fatalf("Verify = %+v, %v; want a named break", rep, err)
		}
		if rep.Broken.Line < 1 || rep.Broken.Line > n+1 || rep.Records != rep.Broken.Line-1 {
			t.Fatalf("break %+v outside a %d-line input or inconsistent with %d intact records", rep.Broken, n, rep.Records)
		}
	})
}
