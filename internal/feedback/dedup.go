package feedback

import (
	"errors"
	"sync"
	"time"
)

// ErrFull is returned by Dedup.Add when it holds its maximum number of
// tokens: the feedback cannot be checked for a replay, so it is not counted.
var ErrFull = errors.New("feedback replay store is full")

// Dedup remembers the tokens one replica has counted for as long as they are
// valid, so a replayed token is counted once per replica. It does not see
// other replicas: a token replayed to each of R replicas is counted up to R
// times (exact once-only counting would need a store all replicas share).
//
// Tokens are kept in generations by issue time, one generation per token
// lifetime: a token issued in generation g expires by the end of g+1, so at
// any time only the current and the previous generation (and the next, for
// a replica whose clock is ahead) are kept, and older ones are dropped whole.
// Each entry is a 64-bit ID in a Go map, ~20 bytes measured
// (BenchmarkDedupMemory); at most max entries are held.
type Dedup struct {
	ttl time.Duration
	max int

	mu    sync.Mutex
	gens  map[int64]map[ID]struct{}
	count int
}

// NewDedup returns a store for tokens valid for ttl, holding at most max.
func NewDedup(ttl time.Duration, max int) *Dedup {
	return &Dedup{ttl: ttl, max: max, gens: map[int64]map[ID]struct{}{}}
}

// Add records a verified token issued at issued and reports whether it had
// been recorded before (a replay). now drops the generations that can hold
// no valid token any more.
func (d *Dedup) Add(id ID, issued, now time.Time) (replay bool, err error) {
	g := issued.UnixNano() / int64(d.ttl)
	oldest := now.UnixNano()/int64(d.ttl) - 1
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, m := range d.gens {
		if k < oldest {
			d.count -= len(m)
			delete(d.gens, k)
		}
	}
	m := d.gens[g]
	if _, ok := m[id]; ok {
		return true, nil
	}
	if d.count >= d.max {
		return false, ErrFull
	}
	if m == nil {
		m = map[ID]struct{}{}
		d.gens[g] = m
	}
	m[id] = struct{}{}
	d.count++
	return false, nil
}

// Len is the number of tokens held.
func (d *Dedup) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.count
}
