package chain

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// The log is JSON Lines, one record a line, fields always in this order:
//
//	{"seq":N,"time":"RFC 3339 UTC","prev":"<hex>","hash":"<hex>","event":<AuditEvent>}
//
// hash is the hex SHA-256 of the record's canonical bytes, which are the
// line without its hash member:
//
//	{"seq":N,"time":"...","prev":"...","event":<AuditEvent>}
//
// and prev is the previous record's hash ("" for the first record, whose
// seq is 1). Changing, removing, inserting or reordering any record breaks
// the chain at that record; only cutting records off the end leaves the
// chain intact, which is why Report carries the head (LastSeq, LastHash)
// for comparison with a copy kept elsewhere (the Redis Stream sink).

// ErrBroken is wrapped by Verify's error when the chain does not hold.
var ErrBroken = errors.New("audit: hash chain broken")

// MaxLineBytes bounds one record; a longer line is a broken record, so a
// damaged file cannot make Verify hold it all in memory.
const MaxLineBytes = 4 << 20

// TimeLayout is the record time format: RFC 3339, UTC, nanoseconds fixed at
// nine digits so every record's time has the same shape.
const TimeLayout = "2006-01-02T15:04:05.000000000Z"

// Record is one parsed line.
type Record struct {
	// Seq numbers records from 1.
	Seq uint64
	// Time is when the record was written, in TimeLayout.
	Time string
	// Prev is the previous record's hash, "" for the first.
	Prev string
	// Hash is the hex SHA-256 of the record's canonical bytes.
	Hash string
	// Event is the AuditEvent JSON, byte for byte as written.
	Event json.RawMessage
}

// AppendCanonical appends the canonical bytes of a record (no hash member).
func AppendCanonical(dst []byte, seq uint64, tm, prev string, event []byte) []byte {
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"time":"`...)
	dst = append(dst, tm...)
	dst = append(dst, `","prev":"`...)
	dst = append(dst, prev...)
	dst = append(dst, `","event":`...)
	dst = append(dst, event...)
	return append(dst, '}')
}

// AppendLine appends the full line of a record, newline included.
func AppendLine(dst []byte, seq uint64, tm, prev, hash string, event []byte) []byte {
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"time":"`...)
	dst = append(dst, tm...)
	dst = append(dst, `","prev":"`...)
	dst = append(dst, prev...)
	dst = append(dst, `","hash":"`...)
	dst = append(dst, hash...)
	dst = append(dst, `","event":`...)
	dst = append(dst, event...)
	return append(dst, "}\n"...)
}

// Hash returns the hex SHA-256 of canonical bytes.
func Hash(canonical []byte) string {
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:])
}

// Seal appends to dst the line of the record seq, time ts (TimeLayout),
// prev and event, and returns it with the record's hash.
func Seal(dst []byte, seq uint64, ts, prev string, event []byte) ([]byte, string) {
	start := len(dst)
	dst = AppendCanonical(dst, seq, ts, prev, event)
	hash := Hash(dst[start:])
	return AppendLine(dst[:start], seq, ts, prev, hash, event), hash
}

// ReasonTorn is Break.Reason for a last line without newline.
const ReasonTorn = "record not terminated by a newline (torn write or truncation)"

type lineFields struct {
	Seq   *uint64         `json:"seq"`
	Time  *string         `json:"time"`
	Prev  *string         `json:"prev"`
	Hash  *string         `json:"hash"`
	Event json.RawMessage `json:"event"`
}

// Parse parses one line (without its newline) and checks that it is in
// canonical form and that its hash matches its content. It does not check
// the link to the previous record.
func Parse(line []byte) (Record, error) {
	var f lineFields
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return Record{}, fmt.Errorf("not a JSON record: %w", err)
	}
	if dec.More() {
		return Record{}, errors.New("trailing data after the record")
	}
	switch {
	case f.Seq == nil:
		return Record{}, errors.New("no seq")
	case f.Time == nil:
		return Record{}, errors.New("no time")
	case f.Prev == nil:
		return Record{}, errors.New("no prev")
	case f.Hash == nil:
		return Record{}, errors.New("no hash")
	case len(f.Event) == 0 || f.Event[0] != '{':
		return Record{}, errors.New("event is not a JSON object")
	}
	r := Record{Seq: *f.Seq, Time: *f.Time, Prev: *f.Prev, Hash: *f.Hash, Event: f.Event}
	// From here on the record is returned with the error, so a break can
	// name its seq.
	if t, err := time.Parse(TimeLayout, r.Time); err != nil || t.Format(TimeLayout) != r.Time {
		return r, errors.New("time is not in the record time format")
	}
	if !isHex64(r.Hash) {
		return r, errors.New("hash is not 64 hex digits")
	}
	if r.Prev != "" && !isHex64(r.Prev) {
		return r, errors.New("prev is not empty or 64 hex digits")
	}
	// Re-render: any byte outside the fields (spacing, escapes, member
	// order, a duplicated member) makes the line differ from its canonical
	// form, so it cannot hide an edit.
	if !bytes.Equal(AppendLine(nil, r.Seq, r.Time, r.Prev, r.Hash, r.Event), append(line[:len(line):len(line)], '\n')) {
		return r, errors.New("record is not in canonical form")
	}
	if got := Hash(AppendCanonical(nil, r.Seq, r.Time, r.Prev, r.Event)); got != r.Hash {
		return r, errors.New("hash does not match the record's content")
	}
	return r, nil
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Break names the first record where the chain does not hold.
type Break struct {
	// Line is the 1-based line number in the file.
	Line int
	// Offset is the byte offset of the line's start.
	Offset int64
	// Seq is the record's seq, 0 when the line could not be parsed.
	Seq uint64
	// Reason says what is wrong, without quoting the record.
	Reason string
}

func (b *Break) String() string {
	if b.Seq == 0 {
		return fmt.Sprintf("line %d: %s", b.Line, b.Reason)
	}
	return fmt.Sprintf("line %d (seq %d): %s", b.Line, b.Seq, b.Reason)
}

// Report is the result of verifying a log.
type Report struct {
	// Records is how many records were found intact before Broken.
	Records int
	// LastSeq and LastHash are the head of the intact chain: compare them
	// with a copy kept elsewhere to detect records cut off the end.
	LastSeq  uint64
	LastHash string
	// Broken is the first broken record, nil when the chain holds.
	Broken *Break
}

// OK reports whether the whole log verified.
func (r Report) OK() bool { return r.Broken == nil }

// Verify reads a log and checks every record: canonical form, hash, seq
// one more than the previous, prev equal to the previous hash (the first
// record: seq 1 and prev ""), and a newline at the end of each. It stops at
// the first broken record; the error then wraps ErrBroken and names
// the line and seq. Other errors are read errors.
func Verify(r io.Reader) (Report, error) {
	return Scan(r, nil)
}

// Scan verifies r record by record, calling fn (when not nil) for every
// intact record with its offset and line length.
func Scan(r io.Reader, fn func(rec Record, off int64, n int)) (Report, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		rep  Report
		off  int64
		line []byte
	)
	for n := 1; ; n++ {
		var err error
		line, err = readLine(br, line[:0])
		if err == io.EOF && len(line) == 0 {
			return rep, nil
		}
		brk := func(seq uint64, reason string) (Report, error) {
			rep.Broken = &Break{Line: n, Offset: off, Seq: seq, Reason: reason}
			return rep, fmt.Errorf("%w at %s", ErrBroken, rep.Broken)
		}
		switch {
		case errors.Is(err, errLineTooLong):
			return brk(0, fmt.Sprintf("record longer than %d bytes", MaxLineBytes))
		case err == io.EOF:
			return brk(0, ReasonTorn)
		case err != nil:
			return rep, fmt.Errorf("audit: read log: %w", err)
		}
		body := line[:len(line)-1]
		rec, perr := Parse(body)
		if perr != nil {
			return brk(rec.Seq, perr.Error())
		}
		switch {
		case rec.Seq != rep.LastSeq+1:
			return brk(rec.Seq, fmt.Sprintf("seq %d follows seq %d", rec.Seq, rep.LastSeq))
		case rec.Prev != rep.LastHash:
			return brk(rec.Seq, "prev does not match the previous record's hash")
		}
		if fn != nil {
			fn(rec, off, len(line))
		}
		rep.Records++
		rep.LastSeq, rep.LastHash = rec.Seq, rec.Hash
		off += int64(len(line))
	}
}

var errLineTooLong = errors.New("line too long")

// readLine appends the next line, newline included, to dst. At the end of
// input it returns what it read (no newline) and io.EOF.
func readLine(br *bufio.Reader, dst []byte) ([]byte, error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if len(dst)+len(chunk) > MaxLineBytes {
			return dst, errLineTooLong
		}
		dst = append(dst, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		return dst, err
	}
}
