package bufpool

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestClasses(t *testing.T) {
	for _, tc := range []struct{ size, class, made int }{
		{1, 0, 4096}, {4096, 0, 4096}, {4097, 1, 8192}, {65536, 4, 65536}, {65537, 5, 131072},
		{1 << 20, 8, 1 << 20}, {1<<20 + 5, classes, 1<<20 + 5},
	} {
		c, n := class(tc.size)
		assert.Equal(t, tc.class, c, "size %d", tc.size)
		assert.Equal(t, tc.made, n, "size %d", tc.size)
	}
}

// The limit holds; what is given back is lent again; beyond what it
// keeps, buffers are dropped and counted for the OS.
func TestBudget(t *testing.T) {
	p := New(100<<10, 16<<10)
	a, ok := p.Get(60 << 10)
	require.True(t, ok)
	assert.Equal(t, 64<<10, cap(a))
	_, ok = p.Get(40 << 10) // 64 KiB more would pass 100 KiB
	assert.False(t, ok)
	b, ok := p.Get(30 << 10)
	require.True(t, ok)
	assert.Equal(t, Stats{Lent: 96 << 10, Peak: 96 << 10, Refused: 1}, p.Stats())

	p.Put(b) // 32 KiB: more than it keeps
	p.Put(a)
	assert.Equal(t, int64(0), p.Stats().Lent)
	assert.Equal(t, int64(96<<10), p.released.Load(), "neither kept: each is larger than 16 KiB")

	c, _ := p.Get(5000)
	p.Put(c)
	d, _ := p.Get(6000)
	assert.Same(t, &c[:1][0], &d[:1][0], "kept and lent again")
	_, ok = p.Get(1<<20 + 5)
	require.False(t, ok, "over the limit")
	p2 := New(4<<20, 4<<20)
	big, ok := p2.Get(1<<20 + 5)
	require.True(t, ok)
	assert.Equal(t, 1<<20+5, cap(big), "exactly what is asked past MaxSize")
	p2.Put(big)
	again, _ := p2.Get(1<<20 + 5)
	assert.Same(t, &big[:1][0], &again[:1][0])
	small, _ := p2.Get(1<<20 + 4000)
	assert.NotSame(t, &big[:1][0], &small[:1][0])
}

// A buffer the pool did not lend is left alone: it is not unmapped, and
// the accounts do not move.
func TestForeignBuffers(t *testing.T) {
	p := New(1<<20, 1<<20)
	b, _ := p.Get(4096)
	p.Put(make([]byte, 4096))
	assert.Equal(t, int64(4096), p.Stats().Lent)
	p.Put(b[:10])
	assert.Zero(t, p.Stats().Lent)
	c, _ := p.Get(4096)
	c = c[:4096]
	c[4095] = 1 // kept, still mapped, lent again
}

func TestTrim(t *testing.T) {
	p := New(1<<30, 0)
	b, _ := p.Get(1 << 20)
	assert.False(t, p.Trim(1<<20, 0), "nothing dropped yet")
	p.Put(b)
	assert.True(t, p.Trim(1<<20, 0))
	assert.False(t, p.Trim(0, 1<<62), "not again so soon")
}

func TestConcurrent(t *testing.T) {
	p := New(1<<20, 256<<10)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				if b, ok := p.Get(4096 << (i % 5)); ok {
					b = append(b, 1)
					p.Put(b)
				}
			}
		}()
	}
	wg.Wait()
	st := p.Stats()
	assert.Zero(t, st.Lent)
	assert.LessOrEqual(t, st.Peak, int64(1<<20))
}
