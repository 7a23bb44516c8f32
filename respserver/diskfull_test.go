package respserver_test

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rmbd/rmbd/internal/faultfs"
	"github.com/rmbd/rmbd/node"
	"github.com/rmbd/rmbd/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A full disk: adds (short, pipelined, and long ones served in pieces)
// are answered with MISCONF naming the cause, reads go on, the
// connection stays open; once space is back adds are taken again.
func TestDiskFullMISCONF(t *testing.T) {
	disk := faultfs.New(nil)
	cfg := node.DefaultConfig()
	cfg.DataDir, cfg.Fsync, cfg.FS = t.TempDir(), store.FsyncAlways, disk
	n := startRESP(t, cfg)
	c, err := net.Dial("tcp", n.RESPAddr().String())
	require.NoError(t, err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	send := func(cmds ...string) {
		t.Helper()
		_, err := c.Write([]byte(strings.Join(cmds, "")))
		require.NoError(t, err)
	}
	line := func() string {
		t.Helper()
		l, err := r.ReadString('\n')
		require.NoError(t, err)
		return strings.TrimRight(l, "\r\n")
	}
	send("BF.ADD f a\r\n")
	require.Equal(t, ":1", line())

	disk.Inject(faultfs.Fault{Ops: faultfs.Full})
	send("BF.ADD f b\r\n", "BF.EXISTS f a\r\n", "BF.MADD f c d\r\n", "PING\r\n")
	assert.True(t, strings.HasPrefix(line(), "-MISCONF the add is not kept: no space left on device"))
	assert.Equal(t, ":1", line(), "reads go on")
	assert.True(t, strings.HasPrefix(line(), "-MISCONF"))
	assert.Equal(t, "+PONG", line())

	var long strings.Builder
	fmt.Fprintf(&long, "*%d\r\n$7\r\nBF.MADD\r\n$1\r\nf\r\n", 2+3000)
	for i := range 3000 {
		item := fmt.Sprintf("long-%d", i)
		fmt.Fprintf(&long, "$%d\r\n%s\r\n", len(item), item)
	}
	send(long.String(), "PING\r\n")
	assert.True(t, strings.HasPrefix(line(), "-MISCONF"), "a long add, served in pieces")
	assert.Equal(t, "+PONG", line())

	disk.Heal()
	waitFor(t, "ready again", func() bool { return n.Health().Ready })
	send("BF.ADD f e\r\n", "BF.EXISTS f e\r\n")
	assert.Equal(t, ":1", line(), "adds taken again")
	assert.Equal(t, ":1", line())
}
