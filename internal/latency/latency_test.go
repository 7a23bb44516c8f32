package latency

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// Each duration lands in the first bucket whose bound holds it; past the
// last bound, in the overflow bucket.
func TestBuckets(t *testing.T) {
	var h Histogram
	for _, d := range []time.Duration{0, 25 * time.Microsecond, 26 * time.Microsecond, time.Second, time.Hour} {
		h.Observe(d)
	}
	s := h.Snapshot()
	assert.Len(t, s.Counts, len(Bounds)+1)
	assert.Equal(t, uint64(2), s.Counts[0], "0 and exactly 25 µs")
	assert.Equal(t, uint64(1), s.Counts[1])
	assert.Equal(t, uint64(1), s.Counts[14], "1 s")
	assert.Equal(t, uint64(1), s.Counts[len(Bounds)], "above every bound")
	assert.Equal(t, uint64(5), s.Count())
	assert.Equal(t, time.Hour+time.Second+51*time.Microsecond, s.Sum)
}
