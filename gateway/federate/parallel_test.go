package federate

import (
	"slices"
	"sync"
	"testing"
	"time"
)

func TestInParallel(t *testing.T) {
	t.Run("results in the order of items, whatever order the calls end in", func(t *testing.T) {
		items := []int{0, 1, 2, 3, 4, 5}
		// The call for item i waits for the call for item i+1 to end, so
		// the calls end in the reverse of the order of items.
		done := make([]chan struct{}, len(items)+1)
		for i := range done {
			done[i] = make(chan struct{})
		}
		close(done[len(items)])
		var mu sync.Mutex
		var ended []int
		got := inParallel(items, func(i int) int {
			<-done[i+1]
			mu.Lock()
			ended = append(ended, i)
			mu.Unlock()
			close(done[i])
			return 10 * i
		})
		if want := []int{0, 10, 20, 30, 40, 50}; !slices.Equal(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
		if want := []int{5, 4, 3, 2, 1, 0}; !slices.Equal(ended, want) {
			t.Fatalf("calls ended in the order %v, want %v", ended, want)
		}
	})

	t.Run("every call runs at the same time", func(t *testing.T) {
		const n = 8
		var started sync.WaitGroup
		started.Add(n)
		all := make(chan struct{})
		go func() { started.Wait(); close(all) }()
		got := inParallel(make([]struct{}, n), func(struct{}) bool {
			started.Done()
			select {
			case <-all:
				return true
			case <-time.After(10 * time.Second):
				return false // the calls did not overlap
			}
		})
		for i, ok := range got {
			if !ok {
				t.Fatalf("call %d never saw the others start", i)
			}
		}
	})

	t.Run("no items, no calls", func(t *testing.T) {
		got := inParallel([]int(nil), func(int) int { t.Error("called"); return 0 })
		if len(got) != 0 {
			t.Fatalf("got %v", got)
		}
	})
}
