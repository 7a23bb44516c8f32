package node_test

import (
	"testing"
	"time"

	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/internal/faultfs"
	"github.com/rmbd/rmbd/store"
	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A full disk: acknowledged adds are refused with an error frame that
// says so (on UDP and TCP), unacknowledged adds and reads go on, /readyz
// turns false; once space is back the node resumes on its own within 2 s
// and every add it acknowledged is there after a restart.
func TestDiskFullRefusesAckedAddsThenResumes(t *testing.T) {
	inBubble(t, func(t *testing.T, tn *testNet) {
		dir, disk := t.TempDir(), faultfs.New(nil)
		cfg := durable(dir, store.FsyncAlways)
		cfg.FS = disk
		n, stop := tn.nodeAt(netAddr(1), cfg)
		u := tn.station()
		ask := func(frame []byte) []byte { // the reply waits for an fsync
			t.Helper()
			u.send(n.Addr(), frame)
			tn.settle()
			in := u.take()
			require.Len(t, in, 1, "one reply")
			return in[0].frame
		}
		var kept [][]byte
		// add returns the error frame refusing the adds, if one does.
		add := func(id uint32, prefix string) *wire.ErrorFrame {
			keys := makeKeys(prefix, 20)
			f, _ := wire.AppendBatch(nil, wire.TypeAddBatch, id, wire.FlagAck, keys)
			reply := ask(f)
			if _, err := wire.DecodeResult(reply); err == nil {
				kept = append(kept, keys...)
				return nil
			}
			e, err := wire.DecodeError(reply)
			require.NoError(t, err, "a result or an error frame")
			assert.Equal(t, id, e.ReqID)
			return &e
		}

		require.Nil(t, add(1, "before"))

		disk.Inject(faultfs.Fault{Ops: faultfs.Full})
		e := add(2, "full")
		require.NotNil(t, e)
		assert.Equal(t, wire.CodeUnwritable, e.Code)
		assert.Contains(t, string(e.Msg), "no space left", "the cause named")
		assert.False(t, n.Health().Ready)
		assert.Contains(t, n.Health().Why, "cannot write the data directory")
		assert.Equal(t, 1, n.Stats().Unwritable)
		assert.Equal(t, uint64(1), n.Stats().Count(counter.AddsUnkept))

		// Over TCP too: the stream stays open and answers in order.
		c := tn.station().dial(n.Addr())
		var req []byte
		req, _ = wire.AppendBatch(req, wire.TypeAddBatch, 7, wire.FlagAck, makeKeys("tcp-full", 5))
		req, _ = wire.AppendBatch(req, wire.TypeHasBatch, 8, 0, makeKeys("before", 3))
		_, err := c.Write(req)
		require.NoError(t, err)
		r := wire.NewFrameReader(c, 4096)
		te, err := wire.DecodeError(readFrame(t, r))
		require.NoError(t, err)
		assert.Equal(t, uint32(7), te.ReqID)
		assert.Equal(t, wire.CodeUnwritable, te.Code)
		has, err := wire.DecodeResult(readFrame(t, r))
		require.NoError(t, err)
		assert.Equal(t, uint32(8), has.ReqID, "reads go on")
		assert.Equal(t, uint64(2), n.Stats().Count(counter.AddsUnkept))

		// Unacknowledged adds and reads go on.
		quiet, _ := wire.AppendBatch(nil, wire.TypeAddBatch, 3, 0, makeKeys("quiet", 5))
		u.send(n.Addr(), quiet)
		tn.settle()
		assert.Empty(t, u.take())
		assert.True(t, hasOn(t, u, n, "quiet-4"))
		assert.True(t, hasOn(t, u, n, "before-0"))

		disk.Heal()
		tn.until("ready again", 2*time.Second, func() bool { return n.Health().Ready })
		require.Nil(t, add(4, "after"), "acknowledged adds resume on their own")
		assert.Equal(t, 0, n.Stats().Unwritable)

		// The disk fills again while a stream's adds wait for their fsync:
		// their results turn into error frames, the stream goes on.
		disk.Inject(faultfs.Fault{Ops: faultfs.Full})
		req, _ = wire.AppendBatch(nil, wire.TypeAddBatch, 9, wire.FlagAck, makeKeys("tcp-again", 5))
		req, _ = wire.AppendBatch(req, wire.TypeHasBatch, 10, 0, makeKeys("after", 3))
		_, err = c.Write(req)
		require.NoError(t, err)
		te, err = wire.DecodeError(readFrame(t, r))
		require.NoError(t, err)
		assert.Equal(t, uint32(9), te.ReqID)
		assert.Equal(t, wire.CodeUnwritable, te.Code)
		has, err = wire.DecodeResult(readFrame(t, r))
		require.NoError(t, err)
		assert.Equal(t, uint32(10), has.ReqID)
		assert.Equal(t, uint64(3), n.Stats().Count(counter.AddsUnkept))
		disk.Heal()
		tn.until("ready once more", 2*time.Second, func() bool { return n.Health().Ready })
		require.Nil(t, add(11, "last"))
		stop()

		cfg.FS = nil
		again, _ := tn.nodeAt(netAddr(1), cfg)
		assert.True(t, hasAll(again, kept), "every acknowledged add kept")
		assert.Len(t, kept, 60)
	})
}
