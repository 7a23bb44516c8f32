package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/rmbd/rmbd/internal/nodetest"
	"github.com/rmbd/rmbd/node"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDedup(t *testing.T) {
	n := nodetest.Start(t, node.DefaultConfig())
	ctx := context.Background()

	var out bytes.Buffer
	in := "a\nb\na\nc\nb\nd\n"
	require.NoError(t, run(ctx, []string{"--addr", n.Addr().String(), "--batch", "2"}, strings.NewReader(in), &out))
	assert.Equal(t, "a\nb\nc\nd\n", out.String())

	out.Reset()
	require.NoError(t, run(ctx, []string{"--addr", n.Addr().String()}, strings.NewReader("d\ne\n"), &out))
	assert.Equal(t, "e\n", out.String(), "remembers earlier runs")
}
