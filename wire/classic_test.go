package wire

import (
	"bytes"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestClassicKeyFrames(t *testing.T) {
	f, err := AppendClassicAdd(nil, []byte("abc"))
	require.NoError(t, err)
	want := append([]byte{0x00, 3, 'a', 'b', 'c'}, make([]byte, 136)...)
	assert.Equal(t, want, f)
	key, err := DecodeClassicKey(f, TypeAdd)
	require.NoError(t, err)
	assert.Equal(t, "abc", string(key))

	h, _ := AppendClassicHas(nil, []byte("abc"))
	assert.Equal(t, byte(0x01), h[0])
	assert.Equal(t, f[1:], h[1:])
	_, err = DecodeClassicKey(h, TypeAdd)
	assert.ErrorIs(t, err, ErrType, "a has is not an add")

	long := bytes.Repeat([]byte("x"), 139)
	f, err = AppendClassicAdd(nil, long)
	require.NoError(t, err)
	assert.Len(t, f, 141)
	key, err = DecodeClassicKey(f, TypeAdd)
	require.NoError(t, err)
	assert.Equal(t, long, key)
	_, err = AppendClassicAdd(nil, append(long, 'x'))
	assert.ErrorIs(t, err, ErrKeyLength, "a 140-byte key is refused, never truncated")
}

func TestClassicKeyValidation(t *testing.T) {
	good, _ := AppendClassicHas(nil, []byte("abc"))
	for name, tc := range map[string]struct {
		frame []byte
		want  error
		msg   string
	}{
		"empty":         {nil, ErrShort, "wire: short frame: has at offset 0"},
		"short":         {good[:140], ErrShort, "wire: short frame: has at offset 140"},
		"long":          {append(slices.Clone(good), 0), ErrTrailing, "wire: trailing bytes: has at offset 141"},
		"length 140":    {func() []byte { b := slices.Clone(good); b[1] = 140; return b }(), ErrKeyLength, "wire: key too long: has at offset 1"},
		"length 255":    {func() []byte { b := slices.Clone(good); b[1] = 255; return b }(), ErrKeyLength, ""},
		"dirty padding": {func() []byte { b := slices.Clone(good); b[100] = 1; return b }(), ErrValue, "wire: bad value: has at offset 100"},
		"wrong type":    {append([]byte{0x07}, good[1:]...), ErrType, "wire: unknown frame type: has at offset 0"},
	} {
		_, err := DecodeClassicKey(tc.frame, TypeHas)
		assert.ErrorIs(t, err, tc.want, name)
		if tc.msg != "" {
			assert.EqualError(t, err, tc.msg, name)
		}
	}
}

func TestClassicHasReply(t *testing.T) {
	for _, present := range []bool{true, false} {
		b, err := AppendClassicHasReply(nil, []byte("key"), present)
		require.NoError(t, err)
		require.Len(t, b, ClassicHasReplySize)
		assert.Equal(t, byte(3), b[0], "no type byte: starts with the key length")
		assert.Equal(t, map[bool]byte{true: 1, false: 0}[present], b[140])
		key, got, err := DecodeClassicHasReply(b)
		require.NoError(t, err)
		assert.Equal(t, "key", string(key))
		assert.Equal(t, present, got)
	}
	b, _ := AppendClassicHasReply(nil, []byte("key"), true)
	b[140] = 2
	_, _, err := DecodeClassicHasReply(b)
	assert.EqualError(t, err, "wire: bad value: has at offset 140")
	b[140] = 1
	_, _, err = DecodeClassicHasReply(b[:100])
	assert.ErrorIs(t, err, ErrShort)
	_, _, err = DecodeClassicHasReply(append(b, 0))
	assert.ErrorIs(t, err, ErrTrailing)
}

func TestClassicSync(t *testing.T) {
	packed := make([]byte, 50)
	packed[0] = 0b101
	packed[49] = 0x80
	f, err := AppendClassicSync(nil, 4, packed)
	require.NoError(t, err)
	require.Len(t, f, ClassicSyncSize)
	assert.Equal(t, []byte{0x02, 0x00, 0x04, 1, 0, 1, 0}, f[:7])
	assert.Equal(t, byte(1), f[402])
	s, err := DecodeClassicSync(f)
	require.NoError(t, err)
	assert.Equal(t, uint16(4), s.Row)
	assert.Equal(t, packed, s.Pack(nil))

	bad := slices.Clone(f)
	bad[3+17] = 2
	_, err = DecodeClassicSync(bad)
	assert.EqualError(t, err, "wire: bad value: sync at offset 20")
	_, err = DecodeClassicSync(f[:402])
	assert.ErrorIs(t, err, ErrShort)
	_, err = AppendClassicSync(nil, 0, packed[:49])
	assert.ErrorIs(t, err, ErrValue)
}

func TestClassicPeer(t *testing.T) {
	f, err := AppendClassicPeer(nil, []byte("localhost"), 9000)
	require.NoError(t, err)
	require.Len(t, f, ClassicPeerSize)
	assert.Equal(t, []byte{0, 0, 0x23, 0x28}, f[141:])
	p, err := DecodeClassicPeer(f)
	require.NoError(t, err)
	assert.Equal(t, "localhost", string(p.Host))
	assert.Equal(t, uint16(9000), p.Port)

	f[141] = 1 // port 2^24 + 9000
	_, err = DecodeClassicPeer(f)
	assert.EqualError(t, err, "wire: bad value: peer at offset 141")
	f[141], f[142], f[143], f[144] = 0, 1, 0, 0 // 65536
	_, err = DecodeClassicPeer(f)
	assert.ErrorIs(t, err, ErrValue)
	f[142], f[143], f[144] = 0, 0xff, 0xff // 65535
	_, err = DecodeClassicPeer(f)
	assert.NoError(t, err)
}

func TestClassicAck(t *testing.T) {
	assert.Equal(t, []byte{0x04}, AppendClassicAck(nil))
	assert.NoError(t, DecodeClassicAck([]byte{0x04}))
	assert.ErrorIs(t, DecodeClassicAck([]byte{0x04, 0}), ErrTrailing)
	assert.ErrorIs(t, DecodeClassicAck(nil), ErrShort)
	assert.ErrorIs(t, DecodeClassicAck([]byte{0x05}), ErrType)
}
