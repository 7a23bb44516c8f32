// Package latest keeps, for each key, the newest value waiting to be
// worked on, and hands them to one worker at a time in the order the keys
// first became pending.
//
// A member's anti-entropy state is such a value: a newer state from the
// same member replaces an older one not yet compared, but a state from
// another member must never be lost because a comparison runs (it may be
// the only copy of rows that member alone holds, after the whole cluster
// restarted).
package latest

import "sync"

// Queue is the newest pending value per key, at most Max keys. The zero
// value is not usable; use New.
type Queue[K comparable, V any] struct {
	mu      sync.Mutex
	max     int
	pending map[K]V
	order   []K // keys pending, oldest first
	busy    bool
	dropped uint64
}

// New returns a Queue holding at most limit keys (at least one).
func New[K comparable, V any](limit int) *Queue[K, V] {
	return &Queue[K, V]{max: max(limit, 1), pending: map[K]V{}}
}

// Put makes v the value pending for k, replacing one not taken yet. It
// reports whether the caller must start the worker (none runs); the
// worker takes values with Next until it reports none. A new key when max
// keys are pending already is dropped (counted by Dropped).
func (q *Queue[K, V]) Put(k K, v V) (start bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.pending[k]; !ok {
		if len(q.order) >= q.max {
			q.dropped++
			return false
		}
		q.order = append(q.order, k)
	}
	q.pending[k] = v
	if q.busy {
		return false
	}
	q.busy = true
	return true
}

// Next takes the oldest pending value. With none it reports false, and
// the worker must stop: the next Put starts another.
func (q *Queue[K, V]) Next() (k K, v V, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.order) == 0 {
		q.busy = false
		return k, v, false
	}
	k = q.order[0]
	q.order[0] = *new(K)
	q.order = q.order[1:]
	v = q.pending[k]
	delete(q.pending, k)
	return k, v, true
}

// Stop marks the worker stopped with values still pending (a shutdown, or
// a worker that could not be started): the next Put starts another.
func (q *Queue[K, V]) Stop() {
	q.mu.Lock()
	q.busy = false
	q.mu.Unlock()
}

// Len returns the number of keys pending.
func (q *Queue[K, V]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.order)
}

// Idle reports that no value is pending and no worker runs.
func (q *Queue[K, V]) Idle() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.order) == 0 && !q.busy
}

// Dropped returns the number of values dropped because max keys were
// pending.
func (q *Queue[K, V]) Dropped() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dropped
}
