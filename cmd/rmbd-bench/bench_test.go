package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/rmbd/rmbd/internal/nodetest"
	"github.com/rmbd/rmbd/node"
	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBenchAgainstNode(t *testing.T) {
	addr := nodetest.Start(t, node.DefaultConfig()).Addr().String()
	for _, args := range [][]string{
		{"--op", "has"},
		{"--op", "mixed", "--batch", "8"},
		{"--op", "add", "--tcp", "--batch", "16"},
		{"--classic"},
	} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), append([]string{"--addr", addr, "--duration", "150ms", "--keys", "2000", "--clients", "4", "--json"}, args...), &out, &errOut)
		require.Equal(t, 0, code, "%v: %s", args, errOut.String())
		var r result
		require.NoError(t, json.Unmarshal(out.Bytes(), &r))
		assert.Positive(t, r.Requests, "%v", args)
		assert.Zero(t, r.Wrong)
		assert.Positive(t, r.Verified)
	}
}

func TestCheckCountsWrongAnswers(t *testing.T) {
	keys := [][]byte{[]byte("a"), []byte("b"), []byte("c")}
	reply, _ := wire.AppendResult(nil, wire.TypeHasResult, 5, 3, []byte{0b101})
	wrong, ok, err := check(reply, false, opHas, 5, keys)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, 1, wrong, "b answered false")
	_, ok, err = check(reply, false, opHas, 6, keys)
	require.NoError(t, err)
	assert.False(t, ok, "a reply to another request")
	cr, _ := wire.AppendClassicHasReply(nil, []byte("a"), false)
	wrong, ok, _ = check(cr, true, opHas, 1, keys[:1])
	assert.True(t, ok)
	assert.Equal(t, 1, wrong)
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--op", "delete"},
		{"--batch", "0"},
		{"--batch", "200"}, // 200 keys of 16 bytes do not fit a datagram
		{"--classic", "--op", "add"},
		{"--clients", "x"},
		{"extra"},
	} {
		var out, errOut bytes.Buffer
		assert.Equal(t, 2, run(context.Background(), args, &out, &errOut), "%v", args)
		assert.Contains(t, errOut.String(), "rmbd-bench: ")
	}
	var out, errOut bytes.Buffer
	assert.Equal(t, 1, run(context.Background(), []string{"--addr", "127.0.0.1:1", "--duration", "100ms", "--timeout", "50ms", "--op", "add"}, &out, &errOut))
}

func TestTouched(t *testing.T) {
	c := config{clients: 2, batch: 2}
	keys := keySet(10, 0, 16)
	got := touched(c, keys, []int{1, 2}) // client 0: keys 0-1; client 1: keys 5-8
	assert.Len(t, got, 6)
	assert.Equal(t, keys[5], got[2])
}

func TestVersion(t *testing.T) {
	var out, errOut bytes.Buffer
	assert.Equal(t, 0, run(context.Background(), []string{"--version"}, &out, &errOut))
	assert.Regexp(t, `^rmbd-bench \S+`, out.String())
}

// --filter addresses a named filter: an add run creates it (the node's
// --auto-create), and a has run then finds every key.
func TestNamedFilter(t *testing.T) {
	n := nodetest.Start(t, node.DefaultConfig())
	addr := n.Addr().String()
	for _, args := range [][]string{{"--op", "add"}, {"--op", "has"}, {"--op", "has", "--tcp"}} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), append([]string{"--addr", addr, "--duration", "150ms", "--keys", "500", "--clients", "2", "--filter", "bench", "--json"}, args...), &out, &errOut)
		require.Equal(t, 0, code, errOut.String())
	}
	require.Len(t, n.Stats().Named, 1)
	assert.Equal(t, "bench", n.Stats().Named[0].Name)
	var out, errOut bytes.Buffer
	assert.Equal(t, 2, run(context.Background(), []string{"--filter", "bad\tname"}, &out, &errOut))
}
