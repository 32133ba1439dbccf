package federate

import "sync"

// inParallel calls fn once for each item, every call in a goroutine of its
// own, and returns what the calls returned in the order of items once all
// of them have returned.
//
// It is the one shape of every fan-out here (over sources, over a source's
// resource types): each call writes only to the value it returns, its
// slot, and the caller merges the slots after the wait, in the order of
// items, so a Result is only ever written by one goroutine and the merged
// answer does not depend on which source was fastest. fn bounds its own
// work (a context with a deadline); inParallel waits for every call.
func inParallel[T, R any](items []T, fn func(T) R) []R {
	out := make([]R, len(items))
	var wg sync.WaitGroup
	for i, item := range items {
		wg.Go(func() { out[i] = fn(item) })
	}
	wg.Wait()
	return out
}
