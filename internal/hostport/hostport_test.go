package hostport

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSplit(t *testing.T) {
	host, port, err := Split("node1:8000")
	require.NoError(t, err)
	assert.Equal(t, "node1", host)
	assert.Equal(t, uint16(8000), port)
	for _, bad := range []string{"node1", "node1:0", "node1:65536", ":8000", "node1:http", "[::1"} {
		_, _, err := Split(bad)
		assert.Error(t, err, bad)
	}
}

func TestCheckListen(t *testing.T) {
	assert.NoError(t, CheckListen("listen", ":0"))
	assert.NoError(t, CheckListen("listen", "127.0.0.1:65535"))
	assert.ErrorContains(t, CheckListen("RESP listen", "127.0.0.1:x"), `RESP listen port "x"`)
	assert.ErrorContains(t, CheckListen("gossip", "nowhere"), `gossip address "nowhere"`)
}

func TestLoopbackAndBeyond(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:1": true, "127.9.9.9:1": true, "[::1]:1": true, "localhost:1": true,
		":1": false, "0.0.0.0:1": false, "10.0.0.1:1": false, "[::]:1": false, "example.org:1": false, "junk": false} {
		assert.Equal(t, want, Loopback(addr), addr)
	}
	assert.Equal(t, []string{"0.0.0.0:8000", ":6379"}, Beyond("127.0.0.1:7946", "0.0.0.0:8000", "", ":6379"))
	assert.Empty(t, Beyond("127.0.0.1:8000", ""))
}

func TestPick(t *testing.T) {
	v6, v4, mapped := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("::ffff:192.0.2.2")
	ip, ok := Pick([]netip.Addr{v6, v4}, false)
	assert.True(t, ok)
	assert.Equal(t, v4, ip, "IPv4 first")
	ip, _ = Pick([]netip.Addr{mapped}, true)
	assert.Equal(t, netip.MustParseAddr("192.0.2.2"), ip, "unmapped")
	ip, _ = Pick([]netip.Addr{v6}, false)
	assert.Equal(t, v6, ip)
	_, ok = Pick([]netip.Addr{v6}, true)
	assert.False(t, ok, "an IPv4 socket cannot reach it")
	_, ok = Pick(nil, false)
	assert.False(t, ok)
}
