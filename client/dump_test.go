package client

import (
	"bytes"
	"context"
	"testing"

	"github.com/rmbd/rmbd/auth"
	"github.com/rmbd/rmbd/internal/nodetest"
	"github.com/rmbd/rmbd/node"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A growing filter dumped from one node and loaded into another under
// another name: every key there, the same stages; a damaged dump is
// refused and changes nothing; the dump of a filter that does not exist
// says so.
func TestDumpAndLoad(t *testing.T) {
	src, dst := nodetest.Start(t, node.DefaultConfig()), nodetest.Start(t, node.DefaultConfig())
	ctx := context.Background()
	a, b := dial(t, src.Addr().String()), dial(t, dst.Addr().String(), WithTCP())
	_, err := a.CreateGrowingFilter(ctx, "users", 2000, 0.01, 2)
	require.NoError(t, err)
	users := a.Filter("users")
	require.NoError(t, users.Add(ctx, keys("u", 10_000)...))

	var file bytes.Buffer
	var calls int
	var last, total uint64
	require.NoError(t, users.Dump(ctx, &file, func(done, all uint64) { calls, last, total = calls+1, done, all }))
	assert.Positive(t, calls)
	assert.Equal(t, total, last, "the progress ends at the total")
	assert.Equal(t, src.Registry().Lookup([]byte("users")).Winner().Bytes(), total, "the total is the filter's bytes, every stage's")

	damaged := bytes.Clone(file.Bytes())
	damaged[len(damaged)/2] ^= 1
	err = b.Filter("copy").Load(ctx, bytes.NewReader(damaged), nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "checksum")
	require.NoError(t, b.DropFilter(ctx, "copy"), "the header before the damage made it")

	require.NoError(t, b.Filter("copy").Load(ctx, bytes.NewReader(file.Bytes()), nil))
	got, err := b.Filter("copy").Has(ctx, keys("u", 10_000)...)
	require.NoError(t, err)
	for i, ok := range got {
		require.True(t, ok, "key %d", i)
	}
	src1 := src.Registry().Lookup([]byte("users")).Winner()
	dst1 := dst.Registry().Lookup([]byte("copy")).Winner()
	require.Equal(t, len(src1.Segments()), len(dst1.Segments()))
	for i, s := range src1.Segments() {
		x, _ := s.Rows().CopyRows(nil, 0, s.Rows().Rows())
		y, _ := dst1.Segments()[i].Rows().CopyRows(nil, 0, s.Rows().Rows())
		require.True(t, bytes.Equal(x, y), "stage %d", i)
	}

	_, _, err = a.Filter("nothing").ScanDump(ctx, 0)
	var se *ServerError
	require.ErrorAs(t, err, &se)
	assert.Contains(t, se.Msg, "no filter nothing")
	err = b.Filter("copy").Load(ctx, bytes.NewReader(file.Bytes()[:100]), nil)
	assert.ErrorContains(t, err, "cut short")
}

// With a cluster key, dumps and loads go sealed, and work.
func TestDumpSealed(t *testing.T) {
	key := newKey(t)
	cfg := node.DefaultConfig()
	cfg.ClusterKeys = []auth.Key{key}
	n := nodetest.Start(t, cfg)
	ctx := context.Background()
	c := dial(t, n.Addr().String(), WithClusterKeys(key))
	require.NoError(t, c.Add(ctx, "k"))
	var file bytes.Buffer
	require.NoError(t, c.Dump(ctx, &file, nil))
	l, err := c.Filter("default").LoadChunk(ctx, file.Bytes()[:chunkLen(t, file.Bytes())])
	require.NoError(t, err)
	assert.False(t, l.Created, "the default filter exists")
}

func chunkLen(t *testing.T, b []byte) int {
	t.Helper()
	n := int(b[6])<<24 | int(b[7])<<16 | int(b[8])<<8 | int(b[9])
	require.LessOrEqual(t, n, len(b))
	return n
}
