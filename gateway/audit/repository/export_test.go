package repository

import (
	"context"
	"testing"

	"github.com/migrant-health/mhg/gateway/audit/chain"
)

// Rechain recomputes the hash and prev of instance's records from seq on,
// in the database, as a forger would after changing one.
func Rechain(t *testing.T, r *Repository, instance string, from uint64) {
	t.Helper()
	ctx := context.Background()
	var recs []chain.Record
	if err := r.Records(ctx, instance, 1, func(rec chain.Record) error {
		recs = append(recs, rec)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	prev := ""
	for _, rec := range recs {
		if rec.Seq >= from {
			rec.Prev = prev
			rec.Hash = chain.Hash(chain.AppendCanonical(nil, rec.Seq, rec.Time, rec.Prev, rec.Event))
			if _, err := r.pool.Exec(ctx, `UPDATE audit_records SET prev = $1, hash = $2 WHERE instance = $3 AND seq = $4`,
				rec.Prev, rec.Hash, instance, int64(rec.Seq)); err != nil {
				t.Fatal(err)
			}
		}
		prev = rec.Hash
	}
}
