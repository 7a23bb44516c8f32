package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/rmbd/rmbd/node"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDedup(t *testing.T) {
	cfg := node.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	n, err := node.New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.Run(ctx)

	var out bytes.Buffer
	in := "a\nb\na\nc\nb\nd\n"
	require.NoError(t, run(ctx, []string{"--addr", n.Addr().String(), "--batch", "2"}, strings.NewReader(in), &out))
	assert.Equal(t, "a\nb\nc\nd\n", out.String())

	out.Reset()
	require.NoError(t, run(ctx, []string{"--addr", n.Addr().String()}, strings.NewReader("d\ne\n"), &out))
	assert.Equal(t, "e\n", out.String(), "remembers earlier runs")
}
