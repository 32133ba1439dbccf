package repository

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"golang.org/x/mod/sumdb/note"

	"github.com/migrant-health/mhg/gateway/audit/chain"
)

// ErrVerify is wrapped by Verify's error when the repository does not
// verify; the report names the first failure.
var ErrVerify = errors.New("audit repository does not verify")

// VerifyOptions configure Verify.
type VerifyOptions struct {
	// VerifierKeys are the note verifier keys checkpoints must be signed
	// with (`mhg audit keygen` prints one). Empty means checkpoints are
	// not checked at all, only the chains.
	VerifierKeys []string
	// Checkpoints are checkpoint notes kept elsewhere (the checkpoint
	// file), checked beside those the repository stores: deleting
	// checkpoints from the database does not hide a truncation from them.
	Checkpoints []string
}

// InstanceReport is what Verify found for one replica.
type InstanceReport struct {
	// Instance names the replica.
	Instance string
	// Records is how many records verified, up to HeadSeq.
	Records uint64
	// HeadSeq and HeadHash are the last verified record's.
	HeadSeq  uint64
	HeadHash string
	// Checkpoints is how many signed checkpoints verified (roots and
	// consistency between successive ones).
	Checkpoints int
}

// Failure names the first record or checkpoint that does not verify.
type Failure struct {
	// Instance is the replica.
	Instance string
	// Seq is the record at fault, 0 when a checkpoint is.
	Seq uint64
	// TreeSize is the checkpoint at fault (its tree size), 0 when a
	// record is.
	TreeSize uint64
	// Reason says what is wrong, without quoting the record.
	Reason string
}

func (f *Failure) String() string {
	if f.Seq > 0 {
		return fmt.Sprintf("instance %s record seq %d: %s", f.Instance, f.Seq, f.Reason)
	}
	return fmt.Sprintf("instance %s checkpoint at tree size %d: %s", f.Instance, f.TreeSize, f.Reason)
}

// VerifyReport is the result of Verify.
type VerifyReport struct {
	// Instances are the replicas verified (in name order), up to the
	// first failure.
	Instances []InstanceReport
	// Failure is the first failure, nil when everything verified.
	Failure *Failure
}

// OK reports whether everything verified.
func (r VerifyReport) OK() bool { return r.Failure == nil }

// Verify checks every replica's records and checkpoints (`mhg audit verify
// --database`): each chain from seq 1 (hash of the canonical record, prev
// link, no gap), each checkpoint's signature, its root recomputed from the
// records it covers, and a consistency proof between successive
// checkpoints. It stops at the first failure, which the report names; the
// error then wraps ErrVerify. Other errors are database errors.
func (r *Repository) Verify(ctx context.Context, opts VerifyOptions) (VerifyReport, error) {
	var rep VerifyReport
	var verifiers note.Verifiers
	if len(opts.VerifierKeys) > 0 {
		var vs []note.Verifier
		for _, k := range opts.VerifierKeys {
			v, err := note.NewVerifier(strings.TrimSpace(k))
			if err != nil {
				return rep, fmt.Errorf("verifier key: %w", err)
			}
			vs = append(vs, v)
		}
		verifiers = note.VerifierList(vs...)
	}
	instances, err := r.Instances(ctx)
	if err != nil {
		return rep, err
	}
	stored, err := r.checkpointNotes(ctx)
	if err != nil {
		return rep, err
	}
	byInstance := map[string][]string{}
	for _, n := range append(stored, opts.Checkpoints...) {
		inst, _, _, err := parseCheckpointText(noteText(n))
		if err != nil {
			rep.Failure = &Failure{Instance: "?", Reason: "a checkpoint note does not parse: " + err.Error()}
			return rep, fmt.Errorf("%w: %s", ErrVerify, rep.Failure)
		}
		byInstance[inst] = append(byInstance[inst], n)
		if !slices.Contains(instances, inst) {
			instances = append(instances, inst) // a checkpoint for records that are gone
		}
	}
	slices.Sort(instances)
	for _, inst := range instances {
		ir, f, err := r.verifyInstance(ctx, inst, byInstance[inst], verifiers)
		if err != nil {
			return rep, err
		}
		if f != nil {
			rep.Failure = f
			return rep, fmt.Errorf("%w: %s", ErrVerify, f)
		}
		rep.Instances = append(rep.Instances, ir)
	}
	return rep, nil
}

func noteText(n string) string {
	if i := strings.Index(n, "\n\n"); i >= 0 {
		return n[:i+1]
	}
	return n
}

func (r *Repository) checkpointNotes(ctx context.Context) ([]string, error) {
	rows, err := r.pool.Query(ctx, `SELECT note FROM audit_checkpoints ORDER BY instance, tree_size`)
	if err != nil {
		return nil, fmt.Errorf("%w: checkpoints: %w", ErrUnavailable, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("%w: checkpoints: %w", ErrUnavailable, err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%w: checkpoints: %w", ErrUnavailable, err)
	}
	return out, nil
}

type signedRoot struct {
	size uint64
	root []byte
}

func (r *Repository) verifyInstance(ctx context.Context, inst string, notes []string, verifiers note.Verifiers) (InstanceReport, *Failure, error) {
	ir := InstanceReport{Instance: inst}
	// Checkpoints: signatures, then one root per size.
	var cps []signedRoot
	if verifiers != nil {
		for _, n := range notes {
			_, size, root, _ := parseCheckpointText(noteText(n))
			if _, err := note.Open([]byte(n), verifiers); err != nil {
				return ir, &Failure{Instance: inst, TreeSize: size, Reason: "signature does not verify with the given keys"}, nil
			}
			if i := slices.IndexFunc(cps, func(c signedRoot) bool { return c.size == size }); i >= 0 {
				if !bytes.Equal(cps[i].root, root) {
					return ir, &Failure{Instance: inst, TreeSize: size, Reason: "two signed checkpoints of this size name different roots"}, nil
				}
				continue
			}
			cps = append(cps, signedRoot{size, root})
		}
		slices.SortFunc(cps, func(a, b signedRoot) int { return cmp.Compare(a.size, b.size) })
	}

	// Records: the chain, and the tree's root at each checkpoint.
	var (
		leaves [][]byte
		tree   = rangeFactory.NewEmptyRange(0)
		next   = 0
		fail   *Failure
	)
	errStop := errors.New("stop")
	err := r.Records(ctx, inst, 1, func(rec chain.Record) error {
		if reason := recordFault(rec, ir.HeadSeq, ir.HeadHash); reason != "" {
			fail = &Failure{Instance: inst, Seq: rec.Seq, Reason: reason}
			if rec.Seq == 0 {
				fail.Seq = ir.HeadSeq + 1
			}
			return errStop
		}
		leaf := LeafHash(rec)
		leaves = append(leaves, leaf)
		if err := tree.Append(leaf, nil); err != nil {
			return err
		}
		ir.Records, ir.HeadSeq, ir.HeadHash = ir.Records+1, rec.Seq, rec.Hash
		for next < len(cps) && cps[next].size == tree.End() {
			root, err := tree.GetRootHash(nil)
			if err != nil {
				return err
			}
			if !bytes.Equal(root, cps[next].root) {
				fail = &Failure{Instance: inst, TreeSize: cps[next].size,
					Reason: fmt.Sprintf("its signed root does not match the root of records 1..%d (a record it covers was changed)", cps[next].size)}
				return errStop
			}
			next++
		}
		return nil
	})
	if fail != nil {
		return ir, fail, nil
	}
	if err != nil {
		return ir, nil, err
	}
	if next < len(cps) {
		return ir, &Failure{Instance: inst, TreeSize: cps[next].size,
			Reason: fmt.Sprintf("it covers %d records, the repository holds %d (records were cut off the end)", cps[next].size, ir.Records)}, nil
	}
	// Consistency between successive checkpoints, as a monitor holding
	// only the checkpoints would check it: each tree extends the last.
	levels := buildLevels(leaves)
	for i := 1; i < len(cps); i++ {
		a, b := cps[i-1], cps[i]
		nodes, err := proof.Consistency(a.size, b.size)
		if err != nil {
			return ir, nil, err
		}
		hashes := make([][]byte, len(nodes.IDs))
		for j, id := range nodes.IDs {
			hashes[j] = levels.node(id)
		}
		p, err := nodes.Rehash(hashes, hasher.HashChildren)
		if err != nil {
			return ir, nil, err
		}
		if err := proof.VerifyConsistency(hasher, a.size, b.size, p, a.root, b.root); err != nil {
			return ir, &Failure{Instance: inst, TreeSize: b.size,
				Reason: fmt.Sprintf("it is not consistent with the checkpoint at tree size %d", a.size)}, nil
		}
	}
	ir.Checkpoints = len(cps)
	return ir, nil, nil
}

// recordFault says what is wrong with a record given the previous one's
// seq and hash, "" when nothing.
func recordFault(rec chain.Record, prevSeq uint64, prevHash string) string {
	switch {
	case rec.Seq != prevSeq+1:
		return fmt.Sprintf("follows seq %d (records missing)", prevSeq)
	case rec.Prev != prevHash:
		return "prev does not match the previous record's hash"
	case len(rec.Event) == 0 || rec.Event[0] != '{':
		return "event is not a JSON object"
	case chain.Hash(chain.AppendCanonical(nil, rec.Seq, rec.Time, rec.Prev, rec.Event)) != rec.Hash:
		return "hash does not match the record's content"
	}
	return ""
}

// treeLevels holds every perfect subtree's hash: levels[0] the leaves,
// levels[k][i] the node over leaves i<<k .. (i+1)<<k - 1.
type treeLevels [][][]byte

func buildLevels(leaves [][]byte) treeLevels {
	lv := treeLevels{leaves}
	for cur := leaves; len(cur) > 1; {
		up := make([][]byte, len(cur)/2)
		for i := range up {
			up[i] = hasher.HashChildren(cur[2*i], cur[2*i+1])
		}
		lv = append(lv, up)
		cur = up
	}
	return lv
}

func (lv treeLevels) node(id compact.NodeID) []byte {
	if int(id.Level) >= len(lv) || id.Index >= uint64(len(lv[id.Level])) {
		return nil
	}
	return lv[id.Level][id.Index]
}
