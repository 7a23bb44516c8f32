package latest

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOrderAndReplacement(t *testing.T) {
	q := New[string, int](8)
	assert.True(t, q.Put("a", 1), "the first value starts the worker")
	assert.False(t, q.Put("b", 1), "a worker runs")
	assert.False(t, q.Put("a", 2), "a newer value for a pending key replaces it")
	assert.Equal(t, 2, q.Len())

	k, v, ok := q.Next()
	require.True(t, ok)
	assert.Equal(t, "a", k)
	assert.Equal(t, 2, v, "the newest value")
	assert.False(t, q.Put("a", 3), "taken already: pending again, behind b")
	k, _, _ = q.Next()
	assert.Equal(t, "b", k)
	k, v, _ = q.Next()
	assert.Equal(t, "a", k)
	assert.Equal(t, 3, v)
	_, _, ok = q.Next()
	assert.False(t, ok)
	assert.True(t, q.Idle())
	assert.True(t, q.Put("c", 1), "the worker stopped: the next value starts one")
}

func TestBound(t *testing.T) {
	q := New[int, int](2)
	q.Put(1, 1)
	q.Put(2, 2)
	assert.False(t, q.Put(3, 3))
	assert.Equal(t, uint64(1), q.Dropped())
	q.Put(2, 20) // a pending key is replaced, not dropped
	assert.Equal(t, uint64(1), q.Dropped())
	var got []int
	for _, v, ok := q.Next(); ok; _, v, ok = q.Next() {
		got = append(got, v)
	}
	assert.Equal(t, []int{1, 20}, got)
}

func TestStop(t *testing.T) {
	q := New[int, int](4)
	require.True(t, q.Put(1, 1))
	q.Stop() // the worker could not start
	assert.False(t, q.Idle(), "still pending")
	assert.True(t, q.Put(2, 2), "another worker is started")
	assert.Equal(t, 2, q.Len())
}

// TestNoValueLost: many writers, a worker started as Put says; every key's
// last value is worked on, and never two workers at once.
func TestNoValueLost(t *testing.T) {
	const writers, each = 8, 500
	q := New[int, int](writers)
	var (
		mu      sync.Mutex
		last    = map[int]int{}
		running atomic.Int32
		wg      sync.WaitGroup
	)
	work := func() {
		defer wg.Done()
		for k, v, ok := q.Next(); ok; k, v, ok = q.Next() {
			if running.Add(1) > 1 {
				t.Errorf("two workers at once")
			}
			runtime.Gosched()
			mu.Lock()
			if v < last[k] {
				t.Errorf("key %d: value %d after %d", k, v, last[k])
			}
			last[k] = v
			mu.Unlock()
			running.Add(-1)
		}
	}
	var writersDone sync.WaitGroup
	for w := range writers {
		writersDone.Add(1)
		go func() {
			defer writersDone.Done()
			for i := 1; i <= each; i++ {
				if q.Put(w, i) {
					wg.Add(1)
					go work()
				}
			}
		}()
	}
	writersDone.Wait()
	wg.Wait()
	assert.True(t, q.Idle())
	for w := range writers {
		assert.Equal(t, each, last[w], "writer %d's last value", w)
	}
}
