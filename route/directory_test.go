package route

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func names(ms []Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

// Members a forward did not reach come last in their group for a while;
// members that left come first to fill from, for a while; members of
// unknown address are left out.
func TestDirectory(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	d := NewDirectory("me", func() time.Time { return now })
	d.Set(map[string]netip.AddrPort{"a": a.Addr, "b": b.Addr, "c": c.Addr, "me": me.Addr})
	ranked := []string{"a", "b", "me", "c", "x"}
	assert.Equal(t, []string{"a", "b", "me", "c"}, names(d.Ranked(ranked, 2)))
	assert.True(t, d.Ranked(ranked, 2)[2].Self)

	d.Unreached(Member{Name: "a"})
	assert.Equal(t, []string{"b", "a", "me", "c"}, names(d.Ranked(ranked, 2)), "last among the owners")
	now = now.Add(SuspectFor)
	assert.Equal(t, []string{"a", "b", "me", "c"}, names(d.Ranked(ranked, 2)), "forgiven")

	d.Left("z", d4)
	assert.Equal(t, []string{"a", "b", "me", "c", "z"}, names(d.FillFrom(ranked, 2)))
	now = now.Add(LeftFor)
	assert.Equal(t, []string{"a", "b", "me", "c"}, names(d.FillFrom(ranked, 2)), "gone")
}

var d4 = netip.MustParseAddrPort("127.0.0.1:4")
