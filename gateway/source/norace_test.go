//go:build !race

package source

// raceEnabled: the race detector changes allocation and slows the codec
// tenfold, so measurements skip under it.
const raceEnabled = false
