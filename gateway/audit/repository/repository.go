package repository

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/migrant-health/mhg/gateway/audit"
	"github.com/migrant-health/mhg/gateway/audit/chain"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Errors callers branch on.
var (
	// ErrConflict is wrapped by Insert when a record's (instance, seq) or
	// id is already stored with different content: two replicas share an
	// instance name, or a replica's local log was replaced.
	ErrConflict = errors.New("audit repository: a different record is already stored under this instance and seq")
	// ErrUnavailable is wrapped when the database cannot be reached.
	ErrUnavailable = errors.New("audit repository unavailable")
)

// Options configure Open.
type Options struct {
	// URL is the PostgreSQL connection string (audit.database_url), as
	// pgx reads it: sslmode, sslrootcert, sslcert and sslkey set TLS.
	// Required.
	URL string
	// MaxConns bounds the connection pool. Zero means pgx's default (the
	// larger of 4 and the number of CPUs).
	MaxConns int32
	// Migrate applies the embedded migrations before Open returns. False
	// means the schema must be there already (`mhg audit migrate`).
	Migrate bool
	// Logger receives migration progress. Nil means slog.Default().
	Logger *slog.Logger
}

// Repository is the PostgreSQL audit repository. It is safe for
// concurrent use.
type Repository struct {
	pool *pgxpool.Pool
}

var _ audit.Searcher = (*Repository)(nil)

// Open connects (lazily: a database that is down does not stop Open unless
// Migrate needs it) and, with Migrate, brings the schema up to date.
func Open(ctx context.Context, opts Options) (*Repository, error) {
	if opts.URL == "" {
		return nil, errors.New("audit repository: no database URL")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	cfg, err := pgxpool.ParseConfig(opts.URL)
	if err != nil {
		// pgx's parse error may quote the URL, password included.
		return nil, errors.New("audit repository: the database URL does not parse")
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("audit repository: %w", err)
	}
	r := &Repository{pool: pool}
	if opts.Migrate {
		if err := r.Migrate(ctx, opts.Logger); err != nil {
			pool.Close()
			return nil, err
		}
	}
	return r, nil
}

// Migrate applies the embedded migrations that the database lacks. goose
// holds a PostgreSQL advisory lock meanwhile, so replicas starting at once
// apply each migration once.
func (r *Repository) Migrate(ctx context.Context, logger *slog.Logger) error {
	db := stdlib.OpenDBFromPool(r.pool)
	defer db.Close()
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 120))
	if err != nil {
		return fmt.Errorf("audit repository: migrate: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, mustSub(migrations, "migrations"),
		goose.WithSessionLocker(locker), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("audit repository: migrate: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("%w: migrate: %w", ErrUnavailable, err)
	}
	for _, m := range res {
		if logger != nil {
			logger.Info("audit repository: migration applied", slog.Int64("version", m.Source.Version),
				slog.Duration("took", m.Duration))
		}
	}
	return nil
}

// Close closes the pool.
func (r *Repository) Close() { r.pool.Close() }

// Check pings the database, for readiness.
func (r *Repository) Check(ctx context.Context) error {
	if err := r.pool.Ping(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// Record is one chain record of one replica, as shipped.
type Record struct {
	// Instance names the replica.
	Instance string
	chain.Record
}

// Insert stores records (any instances, any order) in one statement and
// returns how many were new. Records already stored are skipped, so a
// batch may be sent again; one that differs from what is stored under its
// instance and seq, or its id, fails the whole batch with ErrConflict.
func (r *Repository) Insert(ctx context.Context, recs []Record) (int, error) {
	if len(recs) == 0 {
		return 0, nil
	}
	n := len(recs)
	var (
		instances = make([]string, n)
		seqs      = make([]int64, n)
		ids       = make([]string, n)
		times     = make([]string, n)
		prevs     = make([]string, n)
		hashes    = make([]string, n)
		events    = make([]string, n)
		recorded  = make([]time.Time, n)
		patients  = make([]*string, n)
		clients   = make([]*string, n)
		orgs      = make([]*string, n)
		purposes  = make([]string, n) // text[] literals; unnest cannot take a 2-D array of uneven rows
		outcomes  = make([]*string, n)
		countries = make([]*string, n)
		ops       = make([]*string, n)
		btg       = make([]bool, n)
		traces    = make([]*string, n)
	)
	for i, rec := range recs {
		k, _ := audit.KeysOf(rec.Event)
		if k.ID == "" {
			return 0, fmt.Errorf("audit repository: record %s/%d has no AuditEvent id", rec.Instance, rec.Seq)
		}
		at := k.Recorded
		if at.IsZero() {
			at, _ = time.Parse(chain.TimeLayout, rec.Time)
		}
		instances[i], seqs[i], ids[i] = rec.Instance, int64(rec.Seq), k.ID
		times[i], prevs[i], hashes[i], events[i] = rec.Time, rec.Prev, rec.Hash, string(rec.Event)
		recorded[i] = at
		patients[i], outcomes[i], countries[i] = nonEmpty(k.Patient), nonEmpty(k.Outcome), nonEmpty(k.Country)
		ops[i], traces[i], btg[i] = nonEmpty(k.Operation), nonEmpty(k.TraceID), k.BreakGlass
		clients[i], orgs[i], purposes[i] = nonEmpty(k.Client), nonEmpty(k.Org), arrayLiteral(k.Purposes)
	}
	tag, err := r.pool.Exec(ctx, `
INSERT INTO audit_records (instance, seq, id, time, prev, hash, event, recorded, patient, agent_client,
    agent_org, purposes, outcome, country, operation, break_glass, trace_id)
SELECT u.instance, u.seq, u.id, u.time, u.prev, u.hash, u.event, u.recorded, u.patient, u.agent_client,
    u.agent_org, u.purposes::text[], u.outcome, u.country, u.operation, u.break_glass, u.trace_id
FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
    $8::timestamptz[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[],
    $15::text[], $16::boolean[], $17::text[])
    AS u(instance, seq, id, time, prev, hash, event, recorded, patient, agent_client, agent_org, purposes,
    outcome, country, operation, break_glass, trace_id)
ON CONFLICT DO NOTHING`,
		instances, seqs, ids, times, prevs, hashes, events, recorded, patients, clients, orgs, purposes,
		outcomes, countries, ops, btg, traces)
	if err != nil {
		return 0, fmt.Errorf("%w: insert: %w", ErrUnavailable, err)
	}
	inserted := int(tag.RowsAffected())
	if inserted == n {
		return inserted, nil
	}
	// Some were there already: they must be the same records.
	rows, err := r.pool.Query(ctx, `
SELECT u.instance, u.seq FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[]) AS u(instance, seq, id, hash)
LEFT JOIN audit_records a ON a.instance = u.instance AND a.seq = u.seq AND a.id = u.id AND a.hash = u.hash
WHERE a.seq IS NULL`, instances, seqs, ids, hashes)
	if err != nil {
		return inserted, fmt.Errorf("%w: insert: %w", ErrUnavailable, err)
	}
	defer rows.Close()
	if rows.Next() {
		var inst string
		var seq int64
		if err := rows.Scan(&inst, &seq); err != nil {
			return inserted, fmt.Errorf("%w: insert: %w", ErrUnavailable, err)
		}
		return inserted, fmt.Errorf("%w: instance %s seq %d", ErrConflict, inst, seq)
	}
	if err := rows.Err(); err != nil {
		return inserted, fmt.Errorf("%w: insert: %w", ErrUnavailable, err)
	}
	return inserted, nil
}

// Head returns the highest seq stored for instance and that record's hash
// (0 and "" when none).
func (r *Repository) Head(ctx context.Context, instance string) (uint64, string, error) {
	var (
		seq  int64
		hash string
	)
	err := r.pool.QueryRow(ctx, `SELECT seq, hash FROM audit_records WHERE instance = $1 ORDER BY seq DESC LIMIT 1`,
		instance).Scan(&seq, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("%w: head: %w", ErrUnavailable, err)
	}
	return uint64(seq), hash, nil
}

// Instances lists the replicas that have records, in name order.
func (r *Repository) Instances(ctx context.Context) ([]string, error) {
	rows, err := r.pool.Query(ctx, `SELECT DISTINCT instance FROM audit_records ORDER BY instance`)
	if err != nil {
		return nil, fmt.Errorf("%w: instances: %w", ErrUnavailable, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("%w: instances: %w", ErrUnavailable, err)
	}
	return out, nil
}

// Records calls fn for each record of instance in seq order, from seq
// from on, as stored; it stops at fn's first error and returns it.
func (r *Repository) Records(ctx context.Context, instance string, from uint64, fn func(chain.Record) error) error {
	rows, err := r.pool.Query(ctx, `SELECT seq, time, prev, hash, event FROM audit_records
WHERE instance = $1 AND seq >= $2 ORDER BY seq`, instance, int64(from))
	if err != nil {
		return fmt.Errorf("%w: records: %w", ErrUnavailable, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			rec   chain.Record
			seq   int64
			event string
		)
		if err := rows.Scan(&seq, &rec.Time, &rec.Prev, &rec.Hash, &event); err != nil {
			return fmt.Errorf("%w: records: %w", ErrUnavailable, err)
		}
		rec.Seq, rec.Event = uint64(seq), []byte(event)
		if err := fn(rec); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%w: records: %w", ErrUnavailable, err)
	}
	return nil
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
