// Package storebench is the evidence behind the in-process store's
// library: it runs one read-through workload (Zipf-distributed keys,
// values of 0.5-8 KiB, a byte budget smaller than the working set) over
// otter v2, ristretto v2 and golang-lru v2's expirable LRU and reports
// speed, allocations, hit ratio and bytes actually held.
//
// It is its own module so that the two libraries that lost add nothing to
// the gateway's go.mod. Run it with `go test -bench . -benchmem` in this
// directory; README.md in the parent folder records the results.
package storebench
