package client

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/internal/nodetest"
	"github.com/rmbd/rmbd/node"
	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A node describes filters' stages; asked once, by a ping.
func TestDescribeStages(t *testing.T) {
	n := nodetest.Start(t, node.DefaultConfig())
	c := dial(t, n.Addr().String())
	ctx := context.Background()
	_, err := c.CreateGrowingFilter(ctx, "g", 100, 0.01, 2)
	require.NoError(t, err)
	require.NoError(t, c.Filter("g").Add(ctx, keys("k", 1000)...))
	f, err := c.DescribeFilter(ctx, "g")
	require.NoError(t, err)
	assert.GreaterOrEqual(t, f.Stages, 4)
	assert.Equal(t, 2, f.Expansion)
	assert.Greater(t, f.StagesCapacity, f.Capacity)
	assert.Greater(t, f.Bytes, f.Fingerprint.SizeBytes(), "every stage's bytes")
	all, err := c.Filters(ctx)
	require.NoError(t, err)
	for _, f := range all {
		assert.Positive(t, f.Stages, f.Name)
	}
}

// A client that learned a node describes stages, talking to one that
// drops such requests (an earlier build, rolled back to, at the same
// address): the describe times out once, goes again without asking for
// stages, and is answered; the client asks the node anew next time.
func TestDescribeFallsBackForAnEarlierNode(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	var asked atomic.Int32
	go func() { // an earlier build's node: stages are not its to give, and the byte asking for them is bad padding to it
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q, err := wire.DecodeFilterRequest(buf[:n])
			if err != nil || q.Detail != 0 {
				continue // dropped, as bad frames are
			}
			asked.Add(1)
			out, _ := wire.AppendFilters(nil, q.ReqID, 0, []wire.FilterDesc{{Name: []byte("users"), Gen: 1, Origin: []byte("n1"), FP: filter.Fingerprint{Layout: filter.Blocked, Hash: filter.XXH3, K: 6, RowBits: 512, Rows: 4}, Capacity: 10}})
			pc.WriteTo(out, from)
		}
	}()
	c := dial(t, pc.LocalAddr().String(), WithTimeout(200*time.Millisecond))
	c.stages.Store(int32(wire.FilterDetailStages) + 1) // learned from the build before the rollback
	f, err := c.DescribeFilter(context.Background(), "users")
	require.NoError(t, err)
	assert.Equal(t, "users", f.Name)
	assert.Zero(t, f.Stages, "the node does not say")
	assert.Equal(t, int32(1), asked.Load())
	assert.Zero(t, c.stages.Load(), "to be asked anew")
}

// A windowed filter's create goes only to a node whose pong says it makes
// them: an earlier node would drop it as bad padding, and the client wait
// out its timeout. One that does answers with the window.
func TestCreateWindowedAsksFirst(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	var creates atomic.Int32
	go func() { // an earlier build's node: pongs without PongWindows
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if p, err := wire.DecodePing(buf[:n]); err == nil {
				out, _ := wire.AppendPing(nil, wire.Ping{Type: wire.TypePong, ReqID: p.ReqID, Version: wire.ProtocolVersion,
					Name: []byte("old"), Addr: []byte("127.0.0.1:1"), Flags: wire.PongStages | wire.PongExpiry})
				pc.WriteTo(out, from)
			} else if _, err := wire.DecodeFilterRequest(buf[:n]); err == nil {
				creates.Add(1)
			}
		}
	}()
	c := dial(t, pc.LocalAddr().String(), WithTimeout(2*time.Second))
	_, err = c.CreateWindowedFilter(context.Background(), "recent", 1000, 0.01, time.Minute, 0)
	require.ErrorIs(t, err, ErrNoWindows)
	assert.Zero(t, creates.Load(), "nothing sent that it would drop")

	n := nodetest.Start(t, node.DefaultConfig())
	c = dial(t, n.Addr().String())
	f, err := c.CreateWindowedFilter(context.Background(), "recent", 1000, 0.01, time.Minute, 6)
	require.NoError(t, err)
	assert.Equal(t, time.Minute, f.Window)
	assert.Equal(t, 6, f.Slices)
	assert.Equal(t, uint64(1000), f.Capacity)
	_, err = c.CreateWindowedFilter(context.Background(), "bad", 1000, 0.01, 1500*time.Microsecond, 0)
	assert.ErrorContains(t, err, "whole number of milliseconds")
}
