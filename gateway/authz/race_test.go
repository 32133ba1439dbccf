//go:build race

package authz

// raceEnabled: the race detector slows evaluation several times over, so
// the metamorphic test samples its scenarios (see metamorphicStride).
const raceEnabled = true
