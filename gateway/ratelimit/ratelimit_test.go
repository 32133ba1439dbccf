package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

func TestAllowPerKey(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := New(Options{PerMinute: 60, Burst: 3, Now: func() time.Time { return now }})
	for i := range 3 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, wait := l.Allow("a")
	if ok {
		t.Fatal("the fourth request at once was allowed")
	}
	if wait != time.Second {
		t.Errorf("retry after %s, want 1s (60 a minute)", wait)
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Error("another requester was limited by the first one's requests")
	}
	now = now.Add(time.Second)
	if ok, _ := l.Allow("a"); !ok {
		t.Error("a second later a token should be back")
	}
	if ok, _ := l.Allow("a"); ok {
		t.Error("only one token comes back a second")
	}
}

func TestForgetsFullBuckets(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := New(Options{PerMinute: 60, Burst: 1, Now: func() time.Time { return now }})
	for i := range 5000 {
		l.Allow(fmt.Sprint("k", i))
		now = now.Add(10 * time.Millisecond)
	}
	if n := l.Len(); n > 2100 {
		t.Errorf("%d buckets kept for 5000 keys over 50 s at 1 a second; refilled ones should go", n)
	}
}
