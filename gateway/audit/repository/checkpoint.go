package repository

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/migrant-health/mhg/gateway/audit/chain"
)

// The Merkle tree of a replica has one leaf per record, in seq order: the
// RFC 6962 leaf hash of the record's canonical bytes (chain.AppendCanonical),
// so the tree commits to every record's content, and a checkpoint for tree
// size N commits to records 1..N. Cutting records off the end and
// recomputing the chain leaves a valid chain but cannot reproduce a signed
// checkpoint's root.

// OriginPrefix begins the origin line of every checkpoint; the replica's
// instance name follows.
const OriginPrefix = "mhg-audit/"

var hasher = rfc6962.DefaultHasher

var rangeFactory = &compact.RangeFactory{Hash: hasher.HashChildren}

// LeafHash is the Merkle leaf hash of a record.
func LeafHash(r chain.Record) []byte {
	return hasher.HashLeaf(chain.AppendCanonical(nil, r.Seq, r.Time, r.Prev, r.Event))
}

// Checkpoint is one signed statement of a replica's tree.
type Checkpoint struct {
	// Instance names the replica.
	Instance string
	// Size is the number of records the tree holds.
	Size uint64
	// Root is the tree's root hash.
	Root []byte
	// Note is the signed note text.
	Note string
}

// checkpointText is the body of a checkpoint note, in the transparency-log
// checkpoint format: origin, size, base64 root, each on its own line.
func checkpointText(instance string, size uint64, root []byte) string {
	return OriginPrefix + instance + "\n" + strconv.FormatUint(size, 10) + "\n" +
		base64.StdEncoding.EncodeToString(root) + "\n"
}

// parseCheckpointText reads a checkpoint note's body.
func parseCheckpointText(text string) (instance string, size uint64, root []byte, err error) {
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) < 4 || !strings.HasPrefix(lines[0], OriginPrefix) {
		return "", 0, nil, errors.New("not an mhg audit checkpoint")
	}
	if size, err = strconv.ParseUint(lines[1], 10, 64); err != nil {
		return "", 0, nil, errors.New("checkpoint size is not a number")
	}
	if root, err = base64.StdEncoding.DecodeString(lines[2]); err != nil || len(root) != hasher.Size() {
		return "", 0, nil, errors.New("checkpoint root is not a base64 hash")
	}
	return strings.TrimPrefix(lines[0], OriginPrefix), size, root, nil
}

// GenerateKey makes a checkpoint signing key pair named name (`mhg audit
// keygen`): the signer key for the gateway, the verifier key for whoever
// verifies.
func GenerateKey(name string) (signer, verifier string, err error) {
	return note.GenerateKey(nil, name)
}

// CheckpointerOptions configure NewCheckpointer.
type CheckpointerOptions struct {
	// Repository stores the checkpoints and holds the records. Required.
	Repository *Repository
	// Instance names the replica whose tree this is. Required.
	Instance string
	// SignerKey is the note signer key (audit.checkpoint_key_file's
	// content). Required.
	SignerKey string
	// Interval is the least time between two checkpoints. Zero means 10s.
	Interval time.Duration
	// File, when set, receives a copy of every checkpoint note (appended,
	// synced), for a second party to keep.
	File string
	// Logger receives failures. Nil means slog.Default().
	Logger *slog.Logger
}

// Checkpointer keeps a replica's Merkle tree as its records are shipped
// and signs checkpoints of it. It is the Shipper's Shipped hook.
type Checkpointer struct {
	opts   CheckpointerOptions
	signer note.Signer

	mu     sync.Mutex
	tree   *compact.Range // nil until loaded
	signed uint64
	last   time.Time
}

// NewCheckpointer makes a checkpointer for the replica's tree, which it
// continues from the repository when first used.
func NewCheckpointer(ctx context.Context, opts CheckpointerOptions) (*Checkpointer, error) {
	if opts.Repository == nil || opts.Instance == "" {
		return nil, errors.New("audit checkpoints: repository and instance are required")
	}
	signer, err := note.NewSigner(strings.TrimSpace(opts.SignerKey))
	if err != nil {
		return nil, fmt.Errorf("audit checkpoints: signer key: %w", err)
	}
	if opts.Interval <= 0 {
		opts.Interval = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Checkpointer{opts: opts, signer: signer}, nil
}

// load continues the tree from the last checkpoint's frontier and the
// records stored after it; it runs on first use, so a database that is
// away at start-up does not stop the gateway (the spool waits).
func (c *Checkpointer) load(ctx context.Context) error {
	tree := rangeFactory.NewEmptyRange(0)
	var (
		size     int64
		frontier []string
		signed   uint64
	)
	err := c.opts.Repository.pool.QueryRow(ctx, `SELECT tree_size, frontier FROM audit_checkpoints
WHERE instance = $1 ORDER BY tree_size DESC LIMIT 1`, c.opts.Instance).Scan(&size, &frontier)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return fmt.Errorf("%w: checkpoints: %w", ErrUnavailable, err)
	default:
		hashes := make([][]byte, len(frontier))
		for i, h := range frontier {
			if hashes[i], err = hex.DecodeString(h); err != nil {
				return fmt.Errorf("audit checkpoints: stored frontier: %w", err)
			}
		}
		if tree, err = rangeFactory.NewRange(0, uint64(size), hashes); err != nil {
			return fmt.Errorf("audit checkpoints: stored frontier: %w", err)
		}
		signed = uint64(size)
	}
	c.tree, c.signed = tree, signed
	err = c.opts.Repository.Records(ctx, c.opts.Instance, tree.End()+1, c.append)
	if err != nil {
		c.tree = nil
		return err
	}
	return nil
}

func (c *Checkpointer) append(r chain.Record) error {
	if r.Seq <= c.tree.End() {
		return nil // shipped again; the tree has it
	}
	if r.Seq != c.tree.End()+1 {
		return fmt.Errorf("audit checkpoints: record %d does not follow the tree's %d", r.Seq, c.tree.End())
	}
	return c.tree.Append(LeafHash(r), nil)
}

// Shipped adds shipped records to the tree and signs a checkpoint when one
// is due (the Shipper calls it after each batch, and with none when idle).
func (c *Checkpointer) Shipped(ctx context.Context, recs []chain.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tree == nil {
		if err := c.load(ctx); err != nil {
			return err
		}
	}
	for _, r := range recs {
		if err := c.append(r); err != nil {
			return err
		}
	}
	if c.tree.End() == c.signed || time.Since(c.last) < c.opts.Interval {
		return nil
	}
	return c.sign(ctx)
}

// Flush signs a checkpoint of what the tree holds now, due or not (at
// shutdown).
func (c *Checkpointer) Flush(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tree == nil {
		if err := c.load(ctx); err != nil {
			return err
		}
	}
	if c.tree.End() == c.signed {
		return nil
	}
	return c.sign(ctx)
}

func (c *Checkpointer) sign(ctx context.Context) error {
	size := c.tree.End()
	root, err := c.tree.GetRootHash(nil)
	if err != nil {
		return fmt.Errorf("audit checkpoints: root: %w", err)
	}
	msg, err := note.Sign(&note.Note{Text: checkpointText(c.opts.Instance, size, root)}, c.signer)
	if err != nil {
		return fmt.Errorf("audit checkpoints: sign: %w", err)
	}
	frontier := make([]string, 0, len(c.tree.Hashes()))
	for _, h := range c.tree.Hashes() {
		frontier = append(frontier, hex.EncodeToString(h))
	}
	_, err = c.opts.Repository.pool.Exec(ctx, `INSERT INTO audit_checkpoints (instance, tree_size, root_hash, note, frontier)
VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, c.opts.Instance, int64(size), hex.EncodeToString(root), string(msg), frontier)
	if err != nil {
		return fmt.Errorf("%w: checkpoint: %w", ErrUnavailable, err)
	}
	c.signed, c.last = size, time.Now()
	if c.opts.File != "" {
		if err := appendFile(c.opts.File, msg); err != nil {
			// The repository has it; the second copy is best effort, and
			// said so.
			c.opts.Logger.WarnContext(ctx, "audit checkpoints: cannot write the checkpoint file", slog.Any("error", err))
		}
	}
	return nil
}

// appendFile appends a note to the checkpoint file. A note's text may hold
// blank lines, so notes are separated by a form feed line.
func appendFile(path string, msg []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(bytes.Clone(msg), '\f', '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ReadCheckpointFile splits a checkpoint file into its notes.
func ReadCheckpointFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, part := range strings.Split(string(b), "\f\n") {
		if part != "" {
			out = append(out, part)
		}
	}
	return out, nil
}
