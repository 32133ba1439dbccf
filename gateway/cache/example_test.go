package cache_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/migrant-health/mhg/gateway/cache"
)

func ExampleCache_Fetch() {
	store, err := cache.NewMemoryStore(cache.MemoryOptions{MaxBytes: 64 << 20})
	if err != nil {
		panic(err)
	}
	c, err := cache.New(cache.Options{
		Store:       store,
		TTL:         map[cache.Kind]time.Duration{cache.KindResource: 10 * time.Minute},
		NegativeTTL: 15 * time.Second,
	})
	if err != nil {
		panic(err)
	}
	defer c.Close()

	loads := 0
	read := func(context.Context) ([]byte, error) {
		loads++
		return []byte("mapped Patient proto"), nil
	}
	key := cache.Key{Kind: cache.KindResource, Source: "de-sample", Version: "de-basis@1",
		Parts: []string{"Patient", "upstream-id"}, Tags: []string{"patient:gateway-id"}}
	ctx := context.Background()
	for range 3 {
		v, _ := c.Fetch(ctx, key, false, read)
		fmt.Println(string(v))
	}
	// Cache-Control: no-cache
	_, _ = c.Fetch(ctx, key, true, read)
	fmt.Println("loads:", loads)

	gone := func(context.Context) ([]byte, error) { return nil, fmt.Errorf("no such patient: %w", cache.ErrAbsent) }
	missing := key
	missing.Parts = []string{"Patient", "unknown"}
	_, err1 := c.Fetch(ctx, missing, false, gone)
	_, err2 := c.Fetch(ctx, missing, false, read) // answered from the negative entry
	fmt.Println(errors.Is(err1, cache.ErrAbsent), errors.Is(err2, cache.ErrAbsent), "loads:", loads)

	// Consent revoked: the value and the negative entry both carry the tag.
	n, _ := c.PurgeTag(ctx, "patient:gateway-id")
	fmt.Println("purged:", n)
	// Output:
	// mapped Patient proto
	// mapped Patient proto
	// mapped Patient proto
	// loads: 2
	// true true loads: 2
	// purged: 2
}
