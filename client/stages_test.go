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
