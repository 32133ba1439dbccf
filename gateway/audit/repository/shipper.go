package repository

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"

	"github.com/migrant-health/mhg/gateway/audit"
	"github.com/migrant-health/mhg/gateway/audit/chain"
	"github.com/migrant-health/mhg/gateway/telemetry"
)

// Shipping metrics, from ShipperOptions.MeterProvider. In Prometheus text
// format:
//
//	mhg_audit_ship_records_total        records the repository took (new ones)
//	mhg_audit_ship_failures_total{error_type}
//	mhg_audit_ship_unshipped            records in the local log not yet shipped
//	mhg_audit_ship_lag_seconds          age of the oldest unshipped record
const (
	MetricShipRecords    = "mhg.audit.ship.records"
	MetricShipFailures   = "mhg.audit.ship.failures"
	MetricShipUnshipped  = "mhg.audit.ship.unshipped"
	MetricShipLagSeconds = "mhg.audit.ship.lag"
)

// ErrBacklog is wrapped (with audit.ErrUnavailable) by Gate and Check when
// more records wait than ShipperOptions.MaxUnshipped allows.
var ErrBacklog = errors.New("too many audit records wait to be shipped to the repository")

// Head reports the last record the local log has acknowledged (written and
// synced): *audit.Log's Head.
type Head interface {
	Head() (seq uint64, hash string)
}

// Inserter is what the shipper needs of the repository.
type Inserter interface {
	Insert(ctx context.Context, recs []Record) (int, error)
}

var _ Inserter = (*Repository)(nil)

// ShipperOptions configure NewShipper.
type ShipperOptions struct {
	// Repository receives the records. Required.
	Repository Inserter
	// Path is the local log (the spool). Required.
	Path string
	// Log tells how far the local log has acknowledged records; the
	// shipper never ships past it, so a write the log undid is never
	// shipped. Required.
	Log Head
	// Instance names this replica's chain. Required.
	Instance string
	// Batch is the most records one insert carries. Zero means 500.
	Batch int
	// MaxUnshipped is the backlog past which Gate and Check fail. Zero
	// means 100000.
	MaxUnshipped int
	// Interval is how often the shipper looks for new records when it is
	// idle. Zero means 100ms.
	Interval time.Duration
	// Logger receives shipping failures. Nil means slog.Default().
	Logger *slog.Logger
	// MeterProvider records the shipping metrics. Nil means the global
	// meter provider.
	MeterProvider metric.MeterProvider
	// Shipped, when set, is called after each batch the repository has
	// taken, with the records in it, and with none when Run finds nothing
	// to ship (the Checkpointer's hook). An error fails the batch, which
	// is then sent again.
	Shipped func(ctx context.Context, recs []chain.Record) error
}

// Shipper ships the local log to the repository: in seq order, at least
// once (a batch is sent again until the repository takes it), resuming
// after a restart from the offset it saved beside the log (Path +
// ".shipped"). Safe for concurrent use.
type Shipper struct {
	opts   ShipperOptions
	f      *os.File
	ckPath string

	mu       sync.Mutex
	shipped  checkpoint
	oldest   time.Time // time of the oldest unshipped record read; zero when none waits
	lastErr  error
	failures metric.Int64Counter
	records  metric.Int64Counter
	reg      metric.Registration
}

// checkpoint is the shipped position saved beside the log.
type checkpoint struct {
	Instance string `json:"instance"`
	Seq      uint64 `json:"seq"`
	Hash     string `json:"hash"`
	Offset   int64  `json:"offset"`
}

// NewShipper opens the local log for reading and resumes from the saved
// checkpoint (from the start when there is none, or when it does not fit
// the log: the repository skips what it has).
func NewShipper(opts ShipperOptions) (*Shipper, error) {
	if opts.Repository == nil || opts.Path == "" || opts.Log == nil || opts.Instance == "" {
		return nil, errors.New("audit shipper: repository, path, log and instance are required")
	}
	if opts.Batch <= 0 {
		opts.Batch = 500
	}
	if opts.MaxUnshipped <= 0 {
		opts.MaxUnshipped = 100_000
	}
	if opts.Interval <= 0 {
		opts.Interval = 100 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MeterProvider == nil {
		opts.MeterProvider = otel.GetMeterProvider()
	}
	f, err := os.Open(opts.Path)
	if err != nil {
		return nil, fmt.Errorf("audit shipper: %w", err)
	}
	s := &Shipper{opts: opts, f: f, ckPath: opts.Path + ".shipped"}
	s.resume()
	if err := s.instruments(); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

// resume positions the reader after the saved checkpoint when the log
// still holds that record there.
func (s *Shipper) resume() {
	s.shipped = checkpoint{Instance: s.opts.Instance}
	b, err := os.ReadFile(s.ckPath)
	var ck checkpoint
	if err == nil && json.Unmarshal(b, &ck) == nil && ck.Instance == s.opts.Instance && ck.Offset > 0 {
		if rec, ok := s.recordBefore(ck.Offset); ok && rec.Seq == ck.Seq && rec.Hash == ck.Hash {
			s.shipped = ck
		} else {
			s.opts.Logger.Warn("audit shipper: the saved checkpoint does not fit the log; shipping it again from the start")
		}
	}
}

// recordBefore reads the record whose line ends at off.
func (s *Shipper) recordBefore(off int64) (chain.Record, bool) {
	start := max(off-chain.MaxLineBytes-1, 0)
	buf := make([]byte, off-start)
	if _, err := s.f.ReadAt(buf, start); err != nil || len(buf) == 0 || buf[len(buf)-1] != '\n' {
		return chain.Record{}, false
	}
	line := buf[:len(buf)-1]
	for i := len(line) - 1; i >= 0; i-- {
		if line[i] == '\n' {
			line = line[i+1:]
			break
		}
	}
	rec, err := chain.Parse(line)
	return rec, err == nil
}

func (s *Shipper) instruments() error {
	m := s.opts.MeterProvider.Meter("github.com/migrant-health/mhg/gateway/audit/repository")
	var errs []error
	var err error
	s.records, err = m.Int64Counter(MetricShipRecords, metric.WithUnit("{record}"),
		metric.WithDescription("Audit records the repository took from this replica."))
	errs = append(errs, err)
	s.failures, err = m.Int64Counter(MetricShipFailures, metric.WithUnit("{failure}"),
		metric.WithDescription("Failed attempts to ship audit records."))
	errs = append(errs, err)
	unshipped, err := m.Int64ObservableGauge(MetricShipUnshipped, metric.WithUnit("{record}"),
		metric.WithDescription("Audit records written locally and not yet in the repository."))
	errs = append(errs, err)
	lag, err := m.Float64ObservableGauge(MetricShipLagSeconds, metric.WithUnit("s"),
		metric.WithDescription("Age of the oldest audit record not yet in the repository."))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("audit shipper: metrics: %w", err)
	}
	s.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := s.Status()
		o.ObserveInt64(unshipped, int64(st.Unshipped))
		o.ObserveFloat64(lag, st.Lag.Seconds())
		return nil
	}, unshipped, lag)
	if err != nil {
		return fmt.Errorf("audit shipper: metrics: %w", err)
	}
	return nil
}

// ShipStatus is how far shipping has come.
type ShipStatus struct {
	// Instance names this replica's chain.
	Instance string `json:"instance"`
	// Shipped is the last seq the repository holds from this replica.
	Shipped uint64 `json:"shipped_seq"`
	// Unshipped counts records acknowledged locally and not yet shipped.
	Unshipped uint64 `json:"unshipped"`
	// Lag is the age of the oldest unshipped record (zero when none).
	Lag time.Duration `json:"-"`
	// LagSeconds is Lag in seconds, for /readyz.
	LagSeconds float64 `json:"lag_seconds"`
	// Error is the last shipping failure, "" after a success.
	Error string `json:"error,omitempty"`
}

// Status reports the shipping position and lag.
func (s *Shipper) Status() ShipStatus {
	head, _ := s.opts.Log.Head()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := ShipStatus{Instance: s.opts.Instance, Shipped: s.shipped.Seq}
	if head > s.shipped.Seq {
		st.Unshipped = head - s.shipped.Seq
		if !s.oldest.IsZero() {
			st.Lag = time.Since(s.oldest)
		}
	}
	st.LagSeconds = st.Lag.Seconds()
	if s.lastErr != nil {
		st.Error = s.lastErr.Error()
	}
	return st
}

// Gate fails (wrapping audit.ErrUnavailable and ErrBacklog) while more
// records wait than MaxUnshipped allows: the gateway then stops releasing
// data, which it could not prove to the repository, until shipping
// catches up.
func (s *Shipper) Gate() error {
	st := s.Status()
	if st.Unshipped >= uint64(s.opts.MaxUnshipped) {
		return fmt.Errorf("%w: %w (%d waiting, bound %d)", audit.ErrUnavailable, ErrBacklog, st.Unshipped, s.opts.MaxUnshipped)
	}
	return nil
}

// Check is Gate for readiness.
func (s *Shipper) Check(context.Context) error { return s.Gate() }

// Run ships until ctx ends, then returns nil. A failed batch is sent again
// after a pause that grows to five seconds.
func (s *Shipper) Run(ctx context.Context) error {
	pause := s.opts.Interval
	for {
		n, err := s.ShipOnce(ctx)
		wait := s.opts.Interval
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return nil
			}
			s.failures.Add(ctx, 1, metric.WithAttributes(telemetry.AttrErrorType.String(telemetry.ErrorType(err))))
			s.opts.Logger.WarnContext(ctx, "audit shipper: batch not shipped; it is sent again", slog.Any("error", err))
			pause = min(pause*2, 5*time.Second)
			wait = pause
		case n > 0:
			pause = s.opts.Interval
			continue
		default:
			pause = s.opts.Interval
			if s.opts.Shipped != nil {
				// Idle: a checkpoint that was not yet due may be now. A
				// failure is logged once, not at every idle turn.
				err := s.opts.Shipped(ctx, nil)
				if err == nil {
					s.setErr(nil)
				} else if ctx.Err() == nil {
					s.mu.Lock()
					first := s.lastErr == nil
					s.lastErr = err
					s.mu.Unlock()
					if first {
						s.opts.Logger.WarnContext(ctx, "audit shipper: checkpoint failed", slog.Any("error", err))
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// ShipOnce ships up to one batch of acknowledged records and returns how
// many it shipped.
func (s *Shipper) ShipOnce(ctx context.Context) (int, error) {
	head, _ := s.opts.Log.Head()
	s.mu.Lock()
	from := s.shipped
	s.mu.Unlock()
	if head <= from.Seq {
		return 0, nil
	}
	recs, end, err := s.read(from, head)
	if err != nil {
		return 0, err
	}
	if len(recs) == 0 {
		return 0, nil
	}
	batch := make([]Record, len(recs))
	for i, r := range recs {
		batch[i] = Record{Instance: s.opts.Instance, Record: r}
	}
	if _, err := s.opts.Repository.Insert(ctx, batch); err != nil {
		s.setErr(err)
		return 0, err
	}
	if s.opts.Shipped != nil {
		if err := s.opts.Shipped(ctx, recs); err != nil {
			s.setErr(err)
			return 0, err
		}
	}
	last := recs[len(recs)-1]
	ck := checkpoint{Instance: s.opts.Instance, Seq: last.Seq, Hash: last.Hash, Offset: end}
	if err := s.save(ck); err != nil {
		// The repository has the batch; a stale checkpoint only means it
		// is sent again after a restart, which it skips.
		s.opts.Logger.WarnContext(ctx, "audit shipper: cannot save the shipped checkpoint", slog.Any("error", err))
	}
	s.mu.Lock()
	s.shipped, s.lastErr, s.oldest = ck, nil, time.Time{}
	s.mu.Unlock()
	s.records.Add(ctx, int64(len(recs)))
	return len(recs), nil
}

func (s *Shipper) setErr(err error) {
	s.mu.Lock()
	s.lastErr = err
	s.mu.Unlock()
}

// read returns the next records after from, up to head and Batch, and the
// offset after the last; it checks that they continue the chain.
func (s *Shipper) read(from checkpoint, head uint64) ([]chain.Record, int64, error) {
	var (
		recs []chain.Record
		off  = from.Offset
		prev = from
	)
	rd := bufio.NewReaderSize(io.NewSectionReader(s.f, from.Offset, 1<<62), 64<<10)
	for len(recs) < s.opts.Batch && prev.Seq < head {
		line, err := rd.ReadBytes('\n')
		if err != nil {
			// A line still being written (or the log's probe bytes):
			// ship what is complete.
			break
		}
		if len(line) > chain.MaxLineBytes+1 {
			return nil, 0, fmt.Errorf("audit shipper: local log at offset %d: record longer than %d bytes", off, chain.MaxLineBytes)
		}
		rec, perr := chain.Parse(line[:len(line)-1])
		if perr != nil {
			return nil, 0, fmt.Errorf("audit shipper: local log at offset %d: %w", off, perr)
		}
		if rec.Seq != prev.Seq+1 || rec.Prev != prev.Hash {
			return nil, 0, fmt.Errorf("audit shipper: local log at offset %d: seq %d does not continue seq %d", off, rec.Seq, prev.Seq)
		}
		rec.Event = append([]byte(nil), rec.Event...)
		recs = append(recs, rec)
		off += int64(len(line))
		prev = checkpoint{Seq: rec.Seq, Hash: rec.Hash}
	}
	if len(recs) > 0 {
		if t, err := time.Parse(chain.TimeLayout, recs[0].Time); err == nil {
			s.mu.Lock()
			if s.oldest.IsZero() {
				s.oldest = t
			}
			s.mu.Unlock()
		}
	}
	return recs, off, nil
}

// save writes the checkpoint beside the log, atomically.
func (s *Shipper) save(ck checkpoint) error {
	b, err := json.Marshal(ck)
	if err != nil {
		return err
	}
	tmp := s.ckPath + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, s.ckPath)
}

// Close stops reporting metrics and closes the log file; call it after
// Run has returned.
func (s *Shipper) Close() error {
	if s.reg != nil {
		_ = s.reg.Unregister()
	}
	return s.f.Close()
}
