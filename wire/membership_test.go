package wire

import (
	"slices"
	"testing"

	"github.com/rmbd/rmbd/filter"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNodeMeta(t *testing.T) {
	m := NodeMeta{Version: ProtocolVersion, FP: exampleFP, DataPort: 8000, Flags: MetaLeaving}
	b := AppendNodeMeta(nil, m)
	require.Len(t, b, NodeMetaSize)
	got, err := DecodeNodeMeta(b)
	require.NoError(t, err)
	assert.Equal(t, m, got)

	other := append([]byte{ProtocolVersion + 1}, b[1:]...)
	_, err = DecodeNodeMeta(other)
	assert.ErrorIs(t, err, ErrVersion)
	assert.EqualError(t, err, "wire: unknown protocol version: node metadata at offset 0")
	_, err = DecodeNodeMeta(append([]byte{ProtocolVersion + 1}, 1, 2, 3))
	assert.ErrorIs(t, err, ErrVersion, "another version is refused whatever its length")
	_, err = DecodeNodeMeta(b[:NodeMetaSize-1])
	assert.ErrorIs(t, err, ErrShort)
	_, err = DecodeNodeMeta(append(b, 0))
	assert.ErrorIs(t, err, ErrTrailing)
	zero := AppendNodeMeta(nil, NodeMeta{Version: ProtocolVersion, FP: exampleFP})
	_, err = DecodeNodeMeta(zero)
	assert.ErrorIs(t, err, ErrValue, "port 0")
	_, err = DecodeNodeMeta(nil)
	assert.ErrorIs(t, err, ErrShort)
	b[NodeMetaSize-9] = 0x80 // the flags, before the seal id
	_, err = DecodeNodeMeta(b)
	assert.ErrorIs(t, err, ErrValue, "unknown flags")
}

func TestLocalState(t *testing.T) {
	b, err := AppendLocalStateHeader(nil, []byte("node-1"))
	require.NoError(t, err)
	b = must(AppendDigest(b, exampleFP, 1024, 0, []uint64{7, 8}))
	b = must(AppendDigest(b, exampleFP, 1024, 2, []uint64{9}))
	s, err := DecodeLocalState(b)
	require.NoError(t, err)
	assert.Equal(t, "node-1", string(s.Name))
	assert.Equal(t, b[2+6:], s.Digests)

	empty, _ := AppendLocalStateHeader(nil, nil)
	s, err = DecodeLocalState(empty)
	require.NoError(t, err, "a node without rows to compare still has a state")
	assert.Empty(t, s.Digests)

	_, err = DecodeLocalState(append([]byte{9}, b[1:]...))
	assert.ErrorIs(t, err, ErrVersion)
	_, err = DecodeLocalState(b[:len(b)-1])
	assert.ErrorIs(t, err, ErrShort, "torn digest frame")
	ping := must(AppendPing(nil, Ping{Type: TypePing}))
	_, err = DecodeLocalState(append(slices.Clone(empty), ping...))
	assert.ErrorIs(t, err, ErrType, "only digest frames")
	bad := append(slices.Clone(empty), must(AppendDigest(nil, exampleFP, 1024, 0, []uint64{1}))...)
	copy(bad[len(empty)+HeaderSize+filter.FingerprintSize:], []byte{0, 0, 0, 0}) // 0 rows per block
	_, err = DecodeLocalState(bad)
	assert.ErrorIs(t, err, ErrValue, "a digest that does not decode")
	_, err = AppendLocalStateHeader(nil, make([]byte, MaxNameLen+1))
	assert.ErrorIs(t, err, ErrTooLarge)
}
