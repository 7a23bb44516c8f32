package gossip

import (
	"testing"

	"github.com/rmbd/rmbd/filter"
	"github.com/stretchr/testify/assert"
)

func runs(first, count uint64) []filter.Run { return []filter.Run{{First: first, Count: count}} }

func TestWindowAcks(t *testing.T) {
	var w window
	assert.True(t, w.empty())
	for i := range uint64(4) {
		assert.Equal(t, uint32(i), w.add(runs(i*10, 10), 10, 1))
	}
	assert.Equal(t, 40, w.rows)
	assert.False(t, w.ack(7), "never sent")
	assert.True(t, w.ack(2), "out of order")
	assert.False(t, w.ack(2), "duplicate")
	assert.True(t, w.ack(0))
	assert.Equal(t, 20, w.rows)
	assert.Equal(t, uint32(1), w.first, "acknowledged frames leave from the front only")
	assert.True(t, w.ack(1))
	assert.True(t, w.ack(3))
	assert.True(t, w.empty())
	assert.Zero(t, w.rows)
	assert.Empty(t, w.frames)
	assert.Equal(t, uint32(4), w.add(runs(0, 1), 1, 2), "numbers keep counting")
	assert.False(t, w.ack(3), "an old number is not in flight")
}

func TestWindowLateFramesArePrefix(t *testing.T) {
	var w window
	w.add(runs(0, 5), 5, 1)  // 0
	w.add(runs(10, 5), 5, 1) // 1
	w.add(runs(20, 5), 5, 3) // 2
	w.add(runs(30, 5), 5, 4) // 3
	w.ack(1)
	assert.Empty(t, w.takeLate(2, 2), "nothing two ticks old at tick 2")
	late := w.takeLate(3, 2)
	assert.Equal(t, runs(0, 5), late, "frame 0 only: frame 1 was acked, 2 and 3 are recent")
	assert.Equal(t, 10, w.rows)
	assert.False(t, w.ack(0), "a frame taken as late is no longer in flight: its resend carries a new number")
	late = w.takeLate(10, 2)
	assert.Equal(t, append(runs(20, 5), runs(30, 5)...), late)
	assert.True(t, w.empty())
}

func TestOutbox(t *testing.T) {
	var o Outbox
	o.Add(addr(1), []byte("ab"))
	o.Add(addr(2), []byte("c"))
	var to []string
	var frames []string
	for a, f := range o.All() {
		to = append(to, a.String())
		frames = append(frames, string(f))
	}
	assert.Equal(t, []string{addr(1).String(), addr(2).String()}, to)
	assert.Equal(t, []string{"ab", "c"}, frames)
	assert.Equal(t, 2, o.Len())
	assert.Equal(t, 3, o.Size())
	o.Reset()
	assert.Zero(t, o.Len())
}
