package sysmem

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestParse(t *testing.T) {
	assert.Equal(t, int64(16384000<<10), memTotal([]byte("MemTotal:       16384000 kB\nMemFree:  1 kB\n")))
	assert.Zero(t, memTotal([]byte("MemFree: 5 kB\n")))
	assert.Zero(t, memTotal([]byte("MemTotal: lots kB\n")))
	assert.Zero(t, memTotal(nil))
	assert.Equal(t, int64(536870912), cgroupLimit([]byte("536870912\n")))
	assert.Zero(t, cgroupLimit([]byte("max\n")), "v2: no limit")
	assert.Zero(t, cgroupLimit([]byte("9223372036854771712\n")), "v1: no limit")
	assert.Zero(t, cgroupLimit(nil))
}

func TestTotal(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	total := Total()
	assert.Positive(t, total)
	assert.Equal(t, total/4&^(1<<20-1), Quarter())
}
