package respserver

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rmbd/rmbd/internal/conns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestExpireFamily: EXPIRE and its family answer as Redis's do, over the
// filter's deadline in the catalog.
func TestExpireFamily(t *testing.T) {
	b := newTestBackend(t, 0)
	s := testServer(b)
	rc := &respConn{cn: &conns.Conn{From: loopback}, id: 1, proto: 2, authed: true}
	run := func(cmd string) string { return runInline(s, rc, cmd) }
	require.Equal(t, "+OK\r\n", run("BF.RESERVE f 0.01 1000"))

	for _, c := range []struct{ cmd, want string }{
		{"TTL f", ":-1\r\n"},
		{"PTTL f", ":-1\r\n"},
		{"EXPIRETIME f", ":-1\r\n"},
		{"TTL nope", ":-2\r\n"},
		{"PEXPIRETIME nope", ":-2\r\n"},
		{"EXPIRE nope 10", ":0\r\n"},
		{"PERSIST nope", ":0\r\n"},
		{"PERSIST f", ":0\r\n"},
		{"EXPIRE f 100 XX", ":0\r\n"},
		{"EXPIRE f 100 GT", ":0\r\n"},
		{"EXPIRE f 100 NX", ":1\r\n"},
		{"TTL f", ":100\r\n"},
		{"EXPIRE f 50 NX", ":0\r\n"},
		{"EXPIRE f 50 GT", ":0\r\n"},
		{"EXPIRE f 200 GT", ":1\r\n"},
		{"EXPIRE f 300 LT", ":0\r\n"},
		{"EXPIRE f 150 LT", ":1\r\n"},
		{"TTL f", ":150\r\n"},
		{"EXPIRE f 120 XX", ":1\r\n"},
		{"TTL f", ":120\r\n"},
		{"PERSIST f", ":1\r\n"},
		{"TTL f", ":-1\r\n"},
		{"EXPIRE f 10 LT", ":1\r\n"},
		{"EXPIRE f x", "-ERR value is not an integer or out of range\r\n"},
		{"EXPIRE f 10 NX XX", "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n"},
		{"EXPIRE f 10 GT LT", "-ERR GT and LT options at the same time are not compatible\r\n"},
		{"EXPIRE f 10 SOON", "-ERR Unsupported option SOON\r\n"},
		{"EXPIRE f 9223372036854775807", "-ERR invalid expire time in 'expire' command\r\n"},
		{"TTL default", ":-1\r\n"},
		{"EXPIRE f +5", "-ERR value is not an integer or out of range\r\n"},
		{"EXPIRE f 05", "-ERR value is not an integer or out of range\r\n"},
		{"EXPIRE f -0", "-ERR value is not an integer or out of range\r\n"},
		{"EXPIRE f abc FOO", "-ERR Unsupported option FOO\r\n"},
		{"EXPIRE f 10000000000", ":1\r\n"},
		{"TTL f", ":10000000000\r\n"},
		{"PEXPIREAT f 9223372036854775807", ":1\r\n"},
		{"PEXPIRETIME f", ":9223372036854775807\r\n"},
		{"PEXPIRE f 9223372036854775807", "-ERR invalid expire time in 'pexpire' command\r\n"},
	} {
		assert.Equal(t, c.want, run(c.cmd), c.cmd)
	}
	assert.Contains(t, run("EXPIRE default 10"), "-ERR", "the default filter is never dropped")

	require.Equal(t, ":1\r\n", run("PEXPIRE f 60000"))
	pttl, err := strconv.Atoi(strings.Trim(run("PTTL f"), ":\r\n"))
	require.NoError(t, err)
	assert.InDelta(t, 60000, pttl, 1000)
	at := time.Now().Add(time.Hour).Unix()
	require.Equal(t, ":1\r\n", run(fmt.Sprint("EXPIREAT f ", at)))
	assert.Equal(t, fmt.Sprintf(":%d\r\n", at), run("EXPIRETIME f"))
	assert.Equal(t, fmt.Sprintf(":%d\r\n", at*1000), run("PEXPIRETIME f"))

	// A deadline in the past drops the filter at once, as Redis deletes
	// the key.
	require.Equal(t, ":1\r\n", run("EXPIRE f 0"))
	assert.Equal(t, ":0\r\n", run("EXISTS f"))
	assert.Equal(t, ":-2\r\n", run("TTL f"))
	require.Equal(t, "+OK\r\n", run("BF.RESERVE g 0.01 1000"))
	require.Equal(t, ":1\r\n", run("PEXPIREAT g 1"))
	assert.Equal(t, ":0\r\n", run("EXISTS g"))
}
