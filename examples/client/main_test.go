package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/rmbd/rmbd/internal/nodetest"
	"github.com/rmbd/rmbd/node"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestClientExample runs the README's Go client example against a node.
func TestClientExample(t *testing.T) {
	n := nodetest.Start(t, node.DefaultConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, n.Addr().String(), &out))
	assert.Equal(t, "[true false] [false true]\nusers [true false]\n", out.String())
}
