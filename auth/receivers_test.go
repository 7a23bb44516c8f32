package auth

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Ids are learned, replaced by newer ones, and bounded: past the bound
// one is forgotten and the new one kept.
func TestReceivers(t *testing.T) {
	r := NewReceivers(2)
	a, b, c := netip.MustParseAddrPort("10.0.0.1:8000"), netip.MustParseAddrPort("10.0.0.2:8000"), netip.MustParseAddrPort("10.0.0.3:8000")
	assert.Zero(t, r.ID(a), "unknown")
	r.Learn(a, 7)
	r.Learn(a, 0)
	assert.Equal(t, uint64(7), r.ID(a), "0 is no news")
	r.Learn(a, 8)
	assert.Equal(t, uint64(8), r.ID(a), "a restart: a new id")
	r.Learn(b, 9)
	r.Learn(c, 10)
	assert.Equal(t, uint64(10), r.ID(c))
	known := 0
	for _, x := range []netip.AddrPort{a, b} {
		if r.ID(x) != 0 {
			known++
		}
	}
	assert.Equal(t, 1, known, "one forgotten to make room")
}
