// Package ratelimit holds token buckets per key (per requester), in
// process: each gateway replica counts its own requests. It knows nothing
// of HTTP; fhirapi answers 429 when Allow says no.
package ratelimit

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter allows each key Rate requests a minute, Burst at once. It is
// safe for concurrent use; memory stays bounded because buckets that have
// refilled are forgotten.
type Limiter struct {
	limit rate.Limit
	burst int
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
	// sweepAt is the size of buckets at which full ones are forgotten.
	sweepAt int
}

// Options configure a Limiter.
type Options struct {
	// PerMinute is how many requests a key may make a minute. Zero or less
	// means 30.
	PerMinute int
	// Burst is how many may come at once. Zero or less means 10.
	Burst int
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// New returns a Limiter.
func New(opts Options) *Limiter {
	if opts.PerMinute <= 0 {
		opts.PerMinute = 30
	}
	if opts.Burst <= 0 {
		opts.Burst = 10
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Limiter{
		limit: rate.Limit(float64(opts.PerMinute) / 60), burst: opts.Burst, now: opts.Now,
		buckets: map[string]*rate.Limiter{}, sweepAt: 1024,
	}
}

// Allow takes one token from key's bucket. When there is none it says
// how long until there will be, for Retry-After.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= l.sweepAt {
			l.sweep(now)
		}
		b = rate.NewLimiter(l.limit, l.burst)
		l.buckets[key] = b
	}
	if b.AllowN(now, 1) {
		return true, 0
	}
	r := b.ReserveN(now, 1)
	wait := r.DelayFrom(now)
	r.CancelAt(now)
	return false, time.Duration(math.Ceil(wait.Seconds())) * time.Second
}

// sweep forgets buckets that are full again (they would allow a burst as
// a new one does), and lets the map grow when most are in use.
func (l *Limiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= l.sweepAt/2 {
		l.sweepAt *= 2
	}
}

// Len returns how many keys have a bucket (for tests and metrics).
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
