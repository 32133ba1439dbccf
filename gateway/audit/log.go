package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/migrant-health/mhg/gateway/audit/chain"
	"github.com/migrant-health/mhg/gateway/telemetry"
)

// Errors callers branch on.
var (
	// ErrUnavailable is wrapped by every Record error: the record was not
	// written, so the request must not release data (the HTTP layer answers
	// 503).
	ErrUnavailable = errors.New("audit: sink unavailable")
	// ErrClosed is wrapped (with ErrUnavailable) by Record after Close.
	ErrClosed = errors.New("audit: log closed")
	// ErrCorrupt is wrapped by New when the existing file's chain is broken;
	// the gateway refuses to append to a log it cannot vouch for.
	ErrCorrupt = errors.New("the hash chain of the existing log is broken")
	// ErrLocked is wrapped by New when another process holds the file; the
	// error is a *LockedError.
	ErrLocked = errors.New("in use by another process")
)

// LockedError says that another process holds the log (errors.Is(err,
// ErrLocked)), and which one where the system tells.
type LockedError struct {
	// PID is the process holding the lock; 0 when the system does not say.
	PID int
	// Err is the error of the lock attempt.
	Err error
}

func (e *LockedError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("in use by another mhg process (pid %d)", e.PID)
	}
	return "in use by another mhg process"
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// Unwrap returns the lock attempt's error.
func (e *LockedError) Unwrap() error { return e.Err }

// Options configure New.
type Options struct {
	// Path is the JSONL file (MHG_AUDIT_LOG). Missing directories are
	// created. Required.
	Path string
	// Redis and RedisStream add a second sink: every record is also XADDed
	// to this stream (fields seq, time, prev, hash, event, instance). Nil or
	// empty means no stream.
	Redis       redis.UniversalClient
	RedisStream string
	// StreamMaxLen caps the stream (XADD MAXLEN ~). Zero means no cap.
	StreamMaxLen int64
	// RequireStream makes a failed XADD fail Record. False means the file,
	// written and synced first, is the record of truth: a stream failure is
	// logged and counted, and the request goes on.
	RequireStream bool
	// Observer names this gateway in every AuditEvent. The zero value names
	// it "mhg" with no site.
	Observer Observer
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Logger receives sink failures. Nil means slog.Default().
	Logger *slog.Logger
	// MeterProvider records write durations and failures
	// (MetricRecords, MetricFailures, MetricWriteDuration). Nil means the
	// global OpenTelemetry meter provider.
	MeterProvider metric.MeterProvider
	// Tracer starts the audit.write span. Nil means
	// telemetry.Tracer of this package.
	Tracer trace.Tracer
	// RepairTornTail lets New cut off a last line that has no newline, the
	// trace of a crash in the middle of a write (that record was never
	// acknowledged, so no disclosure depended on it). False means New
	// refuses such a file with ErrCorrupt, like any other damage.
	RepairTornTail bool
}

// Log is the append-only, hash-chained audit log. It is safe for
// concurrent use: records are chained and written by one goroutine, and
// records that arrive together share one write and one fsync.
type Log struct {
	opts    Options
	metrics *instruments
	f       file
	unlock  func()
	reqs    chan *pending
	done    chan struct{}
	closeMu sync.RWMutex
	closed  bool

	// Written only by the writer goroutine, read by Head under mu.
	mu     sync.RWMutex
	seq    uint64
	last   string
	size   int64
	failed error // set when a failed write could not be undone
	// lastErr is the outcome of the last write (nil: it worked); Check
	// reports it, and probes the file until a write works again.
	lastErr error
	index   index
}

// file is what the log needs of its file; tests substitute one that fails.
type file interface {
	io.Reader
	io.ReaderAt
	io.Writer
	io.Seeker
	Sync() error
	Truncate(size int64) error
	Close() error
}

var _ file = (*os.File)(nil)

// pending is one record on its way through the writer, or a probe.
type pending struct {
	// probe asks the writer whether the file takes writes now, without
	// writing a record (Check).
	probe bool
	event []byte
	keys  indexEntry // read from event by the caller, off the writer
	at    time.Time
	done  chan error
	// Set by the writer before done.
	seq  uint64
	ts   string
	prev string
	hash string
}

// maxBatch bounds how many records share one write and fsync.
const maxBatch = 256

// New opens (or creates) the log, verifies the whole existing chain and
// builds the search index from it, so the chain continues across restarts.
// Its errors say what is wrong with the file without repeating its path,
// which the caller names together with the setting it came from.
func New(opts Options) (*Log, error) {
	if opts.Path == "" {
		return nil, errors.New("no log path")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MeterProvider == nil {
		opts.MeterProvider = otel.GetMeterProvider()
	}
	if opts.Tracer == nil {
		opts.Tracer = telemetry.Tracer("github.com/migrant-health/mhg/gateway/audit")
	}
	metrics, err := newInstruments(opts.MeterProvider)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(opts.Path), 0o750); err != nil {
		return nil, fmt.Errorf("cannot create its directory: %w", err)
	}
	f, err := os.OpenFile(opts.Path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("cannot open it: %w", err)
	}
	unlock, err := lockFile(f)
	if err != nil {
		pid := lockHolder(f)
		f.Close()
		return nil, &LockedError{PID: pid, Err: err}
	}
	l := &Log{opts: opts, metrics: metrics, f: f, unlock: unlock, reqs: make(chan *pending, maxBatch), done: make(chan struct{})}
	if err := l.load(); err != nil {
		unlock()
		f.Close()
		return nil, err
	}
	go l.writer()
	return l, nil
}

// load verifies the existing file and indexes it.
func (l *Log) load() error {
	if _, err := l.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("cannot read it: %w", err)
	}
	rep, err := chain.Scan(l.f, func(rec chain.Record, off int64, n int) {
		l.index.add(rec.Seq, off, n, rec.Event)
	})
	if err != nil {
		torn := rep.Broken != nil && rep.Broken.Reason == chain.ReasonTorn
		if !torn || !l.opts.RepairTornTail {
			if rep.Broken != nil {
				return fmt.Errorf("%w at %s", ErrCorrupt, rep.Broken)
			}
			return fmt.Errorf("cannot read it: %w", err)
		}
		if terr := l.f.Truncate(rep.Broken.Offset); terr != nil {
			return fmt.Errorf("cannot cut off its torn last record: %w", terr)
		}
		if serr := l.f.Sync(); serr != nil {
			return fmt.Errorf("cannot cut off its torn last record: %w", serr)
		}
		l.opts.Logger.Warn("audit log: cut off an unterminated last record",
			slog.Int64(string(telemetry.AttrAuditSeq), int64(rep.LastSeq+1)))
	}
	l.seq, l.last = rep.LastSeq, rep.LastHash
	end, err := l.f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("cannot read it: %w", err)
	}
	l.size = end
	return nil
}

// Record renders e as an AuditEvent, appends it to the chain, syncs the
// file and, when configured, adds it to the Redis Stream. It returns the
// AuditEvent id. Any error wraps ErrUnavailable: the record is not in the
// log and the request must not release data.
func (l *Log) Record(ctx context.Context, e Entry) (string, error) {
	ctx, span := l.opts.Tracer.Start(ctx, telemetry.SpanAuditWrite)
	defer span.End()
	start := time.Now()
	id, p, err := l.record(ctx, e)
	if err != nil {
		span.SetStatus(codes.Error, "")
		span.SetAttributes(telemetry.AttrErrorType.String(telemetry.ErrorType(err)))
		l.metrics.written(ctx, sinkFile, e.Outcome, time.Since(start), err)
		return "", err
	}
	l.metrics.written(ctx, sinkFile, e.Outcome, time.Since(start), nil)
	span.SetAttributes(telemetry.AttrAuditSeq.Int64(int64(p.seq)))
	if serr := l.stream(ctx, p); serr != nil {
		l.metrics.written(ctx, sinkRedis, e.Outcome, 0, serr)
		l.opts.Logger.WarnContext(ctx, "audit stream append failed",
			slog.Int64(string(telemetry.AttrAuditSeq), int64(p.seq)), slog.Any("error", serr))
		if l.opts.RequireStream {
			span.SetStatus(codes.Error, "")
			return "", fmt.Errorf("%w: stream: %w", ErrUnavailable, serr)
		}
	}
	return id, nil
}

func (l *Log) record(ctx context.Context, e Entry) (string, *pending, error) {
	id, err := newID()
	if err != nil {
		return "", nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	at := l.opts.Now().UTC()
	event, keys, err := render(e, id, at, l.opts.Observer)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	p := &pending{event: event, keys: keys, at: at, done: make(chan error, 1)}

	l.closeMu.RLock()
	if l.closed {
		l.closeMu.RUnlock()
		return "", nil, fmt.Errorf("%w: %w", ErrUnavailable, ErrClosed)
	}
	select {
	case l.reqs <- p:
	case <-ctx.Done():
		l.closeMu.RUnlock()
		return "", nil, fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}
	l.closeMu.RUnlock()

	// Once queued, the record is written whatever ctx says, so wait for the
	// outcome: returning early could report a failure for a record that is
	// in the log.
	if err := <-p.done; err != nil {
		return "", nil, err
	}
	return id, p, nil
}

// writer chains and writes queued records, batching what has arrived.
func (l *Log) writer() {
	defer close(l.done)
	var batch []*pending
	for p := range l.reqs {
		batch = append(batch[:0], p)
	drain:
		for len(batch) < maxBatch {
			select {
			case q, ok := <-l.reqs:
				if !ok {
					break drain
				}
				batch = append(batch, q)
			default:
				break drain
			}
		}
		records := batch[:0]
		var probes []*pending
		for _, p := range batch {
			if p.probe {
				probes = append(probes, p)
			} else {
				records = append(records, p)
			}
		}
		if len(records) > 0 {
			l.writeBatch(records)
		}
		for _, p := range probes {
			p.done <- l.probe()
		}
	}
}

// probeBytes is what a probe appends and cuts off again: a block's worth,
// so that it needs a new block as a record may (a full disk often still
// has room in the file's last block), and no newline, so that if the
// process dies before the cut the file ends in what the chain reads as a
// torn write, which is what it is.
var probeBytes = []byte(strings.Repeat(" ", 4096))

// probe tells whether the file takes writes again after a failed one, by
// appending probeBytes, syncing and cutting them off. With no failure
// since the last write it touches nothing.
func (l *Log) probe() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failed != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, l.failed)
	}
	if l.lastErr == nil {
		return nil
	}
	err := l.write(probeBytes)
	if terr := l.f.Truncate(l.size); terr != nil {
		l.failed = fmt.Errorf("probe write could not be undone: %w", errors.Join(err, terr))
		return fmt.Errorf("%w: %w", ErrUnavailable, l.failed)
	}
	if err == nil {
		err = l.f.Sync()
	}
	if err != nil {
		l.lastErr = err
		return fmt.Errorf("%w: write %s: %w", ErrUnavailable, l.opts.Path, err)
	}
	l.lastErr = nil
	return nil
}

func (l *Log) writeBatch(batch []*pending) {
	l.mu.Lock()
	if l.failed != nil {
		err := l.failed
		l.mu.Unlock()
		for _, p := range batch {
			p.done <- fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return
	}
	seq, prev := l.seq, l.last
	l.mu.Unlock()

	var (
		buf  []byte
		ends = make([]int, len(batch))
	)
	for i, p := range batch {
		seq++
		p.seq, p.prev, p.ts = seq, prev, p.at.Format(chain.TimeLayout)
		buf, p.hash = chain.Seal(buf, p.seq, p.ts, p.prev, p.event)
		ends[i] = len(buf)
		prev = p.hash
	}
	err := l.write(buf)

	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		// Undo a partial write so the chain on disk stays whole; if even
		// that fails the log is unusable until an operator looks at it.
		if terr := l.f.Truncate(l.size); terr != nil {
			l.failed = fmt.Errorf("write failed and could not be undone: %w", errors.Join(err, terr))
		}
		l.lastErr = err
		for _, p := range batch {
			p.done <- fmt.Errorf("%w: write %s: %w", ErrUnavailable, l.opts.Path, err)
		}
		return
	}
	start := 0
	for i, p := range batch {
		l.index.addKeys(p.seq, l.size+int64(start), ends[i]-start, p.keys)
		start = ends[i]
		p.done <- nil
	}
	l.seq, l.last, l.size = seq, prev, l.size+int64(len(buf))
	l.lastErr = nil
}

func (l *Log) write(b []byte) error {
	if _, err := l.f.Write(b); err != nil {
		return err
	}
	return l.f.Sync()
}

func (l *Log) stream(ctx context.Context, p *pending) error {
	if l.opts.Redis == nil || l.opts.RedisStream == "" {
		return nil
	}
	instance := l.opts.Observer.Instance
	if instance == "" {
		instance = "mhg"
	}
	args := &redis.XAddArgs{
		Stream: l.opts.RedisStream,
		Values: []string{
			"seq", strconv.FormatUint(p.seq, 10), "time", p.ts, "prev", p.prev, "hash", p.hash,
			"instance", instance, "event", string(p.event),
		},
	}
	if l.opts.StreamMaxLen > 0 {
		args.MaxLen, args.Approx = l.opts.StreamMaxLen, true
	}
	if err := l.opts.Redis.XAdd(ctx, args).Err(); err != nil {
		return fmt.Errorf("audit: xadd %s: %w", l.opts.RedisStream, err)
	}
	return nil
}

// Head returns the seq and hash of the last record (0 and "" for an empty
// log), for anchoring the chain elsewhere.
func (l *Log) Head() (seq uint64, hash string) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.seq, l.last
}

// Check reports whether Record can be expected to work, for readiness. It
// fails from the moment a write fails; after that every Check asks the
// file again (it appends a few bytes and cuts them off, in turn with the
// records), so readiness comes back by itself once writes work, without
// waiting for a request to write a record. It fails for good once the log
// is closed or a failed write could not be undone.
func (l *Log) Check(ctx context.Context) error {
	l.mu.RLock()
	failed, lastErr := l.failed, l.lastErr
	l.mu.RUnlock()
	if failed != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, failed)
	}
	p := &pending{probe: true, done: make(chan error, 1)}
	l.closeMu.RLock()
	if l.closed {
		l.closeMu.RUnlock()
		return fmt.Errorf("%w: %w", ErrUnavailable, ErrClosed)
	}
	if lastErr == nil {
		l.closeMu.RUnlock()
		return nil
	}
	select {
	case l.reqs <- p:
	case <-ctx.Done():
		l.closeMu.RUnlock()
		return fmt.Errorf("%w: %w", ErrUnavailable, lastErr)
	}
	l.closeMu.RUnlock()
	return <-p.done
}

// Close waits for queued records, then closes the file. Record fails with
// ErrClosed afterwards. It is safe to call more than once.
func (l *Log) Close() error {
	l.closeMu.Lock()
	if l.closed {
		l.closeMu.Unlock()
		return nil
	}
	l.closed = true
	close(l.reqs)
	l.closeMu.Unlock()
	<-l.done
	l.unlock()
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("audit: close log: %w", err)
	}
	return nil
}

// newID returns a random UUID (version 4) for the AuditEvent id.
func newID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("audit: random id: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}
