package audit

import (
	"context"
	"io"

	"github.com/migrant-health/mhg/gateway/audit/chain"
)

// Report is the result of verifying a log (see chain.Report).
type Report = chain.Report

// Break names the first broken record of a log (see chain.Break).
type Break = chain.Break

// ErrChainBroken is wrapped by Verify's error when the chain does not hold.
var ErrChainBroken = chain.ErrBroken

// Verify reads a log and checks every record: canonical form, hash, seq
// one more than the previous, prev equal to the previous hash, and a
// newline after each. It stops at the first broken record; the error then
// wraps ErrChainBroken and names the line and seq. `mhg audit verify FILE`
// runs it. The format is in package chain, which has no dependencies, so a
// verifier can be built without the rest of the gateway.
func Verify(r io.Reader) (Report, error) { return chain.Verify(r) }

// VerifyChain verifies the whole log as it is on disk now (what `mhg audit
// verify` checks), for the console's chain status. Records appended while
// it reads are not part of the report.
func (l *Log) VerifyChain(ctx context.Context) (Report, error) {
	l.mu.RLock()
	size := l.size
	l.mu.RUnlock()
	if err := ctx.Err(); err != nil {
		return Report{}, err
	}
	return chain.Verify(io.NewSectionReader(l.f, 0, size))
}
