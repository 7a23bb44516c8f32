package gossip

import (
	"testing"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// answerTo answers a challenge frame as every rmbd (and the Python one)
// answers a classic has: the key echoed, and a boolean.
func answerTo(t *testing.T, challenge []byte) []byte {
	t.Helper()
	key, err := wire.DecodeClassicKey(challenge, wire.TypeHas)
	require.NoError(t, err)
	reply, err := wire.AppendClassicHasReply(nil, key, false)
	require.NoError(t, err)
	return reply
}

func plain(o *Outbox) (frames [][]byte) {
	for _, f := range o.Plain() {
		frames = append(frames, append([]byte(nil), f...))
	}
	return frames
}

// A peer request gets the address one challenge, and rows only once it
// answers it from that address; a wrong or stray answer verifies nothing.
func TestChallenges(t *testing.T) {
	f, _ := filter.New(filter.Config{Layout: filter.Blocked, Capacity: 1000, FPRate: 0.01})
	f.Add([]byte("k"))
	g, err := New(DefaultConfig(), f)
	require.NoError(t, err)
	var out Outbox
	assert.Equal(t, PeerChallenged, g.RequestPeer(addr(1), false, &out))
	ch := plain(&out)
	require.Len(t, ch, 1, "one challenge")
	assert.Len(t, ch[0], wire.ClassicKeyFrameSize)
	assert.Zero(t, len(out.msgs), "and nothing else")
	out.Reset()
	g.Tick(&out)
	assert.Zero(t, out.Len(), "no rows, no new challenge: it was not asked to retry")

	right := answerTo(t, ch[0])
	assert.True(t, IsAnswer(right))
	assert.False(t, g.Answer(right, addr(2)), "from another address")
	wrong := append([]byte(nil), right...)
	wrong[5] ^= 1
	assert.False(t, g.Answer(wrong, addr(1)), "another key")
	assert.Equal(t, uint64(2), g.Counters().StrayAnswers)
	assert.True(t, g.Answer(right, addr(1)))
	assert.False(t, g.Answer(right, addr(1)), "once")
	assert.Equal(t, PeerKnown, g.RequestPeer(addr(1), false, &out))
	out.Reset()
	g.Tick(&out)
	assert.Equal(t, 1, out.Len(), "rows now")
	assert.Empty(t, plain(&out))
	assert.Equal(t, uint64(1), g.Counters().Verified)
}

// A peer the operator named (retry) is challenged again every tick until
// it answers; a removed peer's challenge is forgotten; a full table of
// working peers refuses.
func TestChallengesRetried(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxPeers, cfg.PruneAfter = 1, 100
	g, err := New(cfg, filter.NewClassic())
	require.NoError(t, err)
	var out Outbox
	g.RequestPeer(addr(1), true, &out)
	first := plain(&out)
	out.Reset()
	g.Tick(&out)
	again := plain(&out)
	require.Len(t, again, 1, "challenged again")
	assert.NotEqual(t, first[0], again[0], "with a new key")
	assert.False(t, g.Answer(answerTo(t, first[0]), addr(1)), "the old key is stale")
	require.True(t, g.Answer(answerTo(t, again[0]), addr(1)))
	g.peers[addr(1)].live = true // it acknowledged rows: a working peer
	out.Reset()
	assert.Equal(t, PeerRefused, g.RequestPeer(addr(2), false, &out))
	assert.Zero(t, out.Len(), "a refused address is sent nothing")
	assert.True(t, g.RemovePeer(addr(1)))
	assert.Empty(t, g.challenges)
	assert.Equal(t, uint64(2), g.Counters().Challenges)
}
