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
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/migrant-health/mhg/gateway/authz"
)

// InsertDecisions stores decision log lines of one replica and returns how
// many were new; a decision already stored (by id) is skipped, so a batch
// may be sent again.
func (r *Repository) InsertDecisions(ctx context.Context, instance string, lines [][]byte) (int, error) {
	var (
		ids, revs, entries []string
		at                 []time.Time
	)
	for _, l := range lines {
		var e authz.LogEntry
		if err := json.Unmarshal(l, &e); err != nil || e.DecisionID == "" {
			return 0, errors.New("audit repository: a decision log line is not a decision log entry")
		}
		ids, revs, entries, at = append(ids, e.DecisionID), append(revs, e.Revision()), append(entries, string(l)), append(at, e.Timestamp)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	tag, err := r.pool.Exec(ctx, `
INSERT INTO audit_decisions (decision_id, instance, decided_at, revision, entry)
SELECT u.id, $1, u.at, u.rev, u.entry FROM unnest($2::text[], $3::timestamptz[], $4::text[], $5::text[]) AS u(id, at, rev, entry)
ON CONFLICT DO NOTHING`, instance, ids, at, revs, entries)
	if err != nil {
		return 0, fmt.Errorf("%w: decisions: %w", ErrUnavailable, err)
	}
	return int(tag.RowsAffected()), nil
}

// Range calls fn for every replica's decision with from <= time < to (zero
// bounds are open), oldest first, and stops at fn's first error: the
// policy workbench's decision log when a repository is configured.
func (r *Repository) Range(ctx context.Context, from, to time.Time, fn func(authz.LogEntry) error) error {
	q := `SELECT entry FROM audit_decisions`
	var (
		where []string
		args  []any
	)
	if !from.IsZero() {
		args = append(args, from)
		where = append(where, "decided_at >= $"+strconv.Itoa(len(args)))
	}
	if !to.IsZero() {
		args = append(args, to)
		where = append(where, "decided_at < $"+strconv.Itoa(len(args)))
	}
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := r.pool.Query(ctx, q+" ORDER BY decided_at, decision_id", args...)
	if err != nil {
		return fmt.Errorf("%w: decisions: %w", ErrUnavailable, err)
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return fmt.Errorf("%w: decisions: %w", ErrUnavailable, err)
		}
		var e authz.LogEntry
		if err := json.Unmarshal([]byte(s), &e); err != nil {
			return fmt.Errorf("audit repository: a stored decision does not parse: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%w: decisions: %w", ErrUnavailable, err)
	}
	return nil
}

// Find returns one decision by id; an error wrapping
// authz.ErrDecisionNotFound when none is stored.
func (r *Repository) Find(ctx context.Context, id string) (authz.LogEntry, error) {
	var s string
	err := r.pool.QueryRow(ctx, `SELECT entry FROM audit_decisions WHERE decision_id = $1`, id).Scan(&s)
	if errors.Is(err, pgx.ErrNoRows) {
		return authz.LogEntry{}, fmt.Errorf("%w: %s", authz.ErrDecisionNotFound, id)
	}
	if err != nil {
		return authz.LogEntry{}, fmt.Errorf("%w: decisions: %w", ErrUnavailable, err)
	}
	var e authz.LogEntry
	if err := json.Unmarshal([]byte(s), &e); err != nil {
		return authz.LogEntry{}, fmt.Errorf("audit repository: a stored decision does not parse: %w", err)
	}
	return e, nil
}

// DecisionShipperOptions configure NewDecisionShipper.
type DecisionShipperOptions struct {
	// Repository receives the decisions. Required.
	Repository *Repository
	// Path is the decision log (policy.decision_log). Required.
	Path string
	// Instance names this replica. Required.
	Instance string
	// Batch is the most decisions one insert carries. Zero means 500.
	Batch int
	// Interval is how often an idle shipper looks for new lines. Zero
	// means 500ms.
	Interval time.Duration
	// Logger receives failures. Nil means slog.Default().
	Logger *slog.Logger
}

// DecisionShipper ships the decision log to the repository: complete lines
// in file order, at least once (idempotent by decision id), resuming from
// the offset saved beside the log (Path + ".shipped").
type DecisionShipper struct {
	opts DecisionShipperOptions
	mu   sync.Mutex
	off  int64
}

// NewDecisionShipper resumes from the saved offset (from the start when
// there is none or the log is shorter).
func NewDecisionShipper(opts DecisionShipperOptions) (*DecisionShipper, error) {
	if opts.Repository == nil || opts.Path == "" || opts.Instance == "" {
		return nil, errors.New("decision shipper: repository, path and instance are required")
	}
	if opts.Batch <= 0 {
		opts.Batch = 500
	}
	if opts.Interval <= 0 {
		opts.Interval = 500 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &DecisionShipper{opts: opts}
	if b, err := os.ReadFile(opts.Path + ".shipped"); err == nil {
		if off, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil {
			if st, err := os.Stat(opts.Path); err == nil && off <= st.Size() {
				s.off = off
			}
		}
	}
	return s, nil
}

// ShipOnce ships up to one batch and returns how many lines it shipped.
func (s *DecisionShipper) ShipOnce(ctx context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.Open(s.opts.Path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("decision shipper: %w", err)
	}
	defer f.Close()
	rd := bufio.NewReaderSize(io.NewSectionReader(f, s.off, 1<<62), 64<<10)
	var (
		lines [][]byte
		end   = s.off
	)
	for len(lines) < s.opts.Batch {
		l, err := rd.ReadBytes('\n')
		if err != nil {
			break // EOF, or a line still being written
		}
		end += int64(len(l))
		if len(l) > 1 {
			lines = append(lines, l[:len(l)-1])
		}
	}
	if end == s.off {
		return 0, nil
	}
	if _, err := s.opts.Repository.InsertDecisions(ctx, s.opts.Instance, lines); err != nil {
		return 0, err
	}
	s.off = end
	tmp := s.opts.Path + ".shipped.tmp"
	if err := os.WriteFile(tmp, []byte(strconv.FormatInt(end, 10)), 0o640); err == nil {
		_ = os.Rename(tmp, s.opts.Path+".shipped")
	}
	return len(lines), nil
}

// Run ships until ctx ends.
func (s *DecisionShipper) Run(ctx context.Context) {
	for {
		n, err := s.ShipOnce(ctx)
		if err != nil && ctx.Err() == nil {
			s.opts.Logger.WarnContext(ctx, "decision shipper: batch not shipped; it is sent again", slog.Any("error", err))
		}
		if n > 0 && err == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.opts.Interval):
		}
	}
}
