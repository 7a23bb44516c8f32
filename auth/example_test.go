package auth

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rmbd/rmbd/internal/docexamples"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestProtocolDocExample keeps the sealed frame example of
// docs/PROTOCOL.md honest: the key, its id and the frame are what this
// package derives and seals. Run with AUTH_PRINT_EXAMPLE=1 to print them.
func TestProtocolDocExample(t *testing.T) {
	k := key(t, 1) // bytes 0x01..0x20
	r := ring(t, k)
	s := &Sealer{sender: 42}
	s.ring.Store(r)
	sealed, err := s.Seal(nil, ackFrame(t, 1), 7, time.UnixMilli(1_700_000_000_000))
	require.NoError(t, err)
	var sb strings.Builder
	for i := 0; i < len(sealed); i += 16 {
		sb.WriteString(strings.TrimSpace(fmt.Sprintf("% x", sealed[i:min(i+16, len(sealed))])) + "\n")
	}
	keyLine := fmt.Sprintf("key `%s` (bytes `01` … `20`), key id `%08x`", k, r.IDs()[0])
	if os.Getenv("AUTH_PRINT_EXAMPLE") != "" {
		fmt.Printf("%s\n<!-- example: sealed -->\n```\n%s```\n", keyLine, sb.String())
	}

	doc, err := os.ReadFile("../docs/PROTOCOL.md")
	require.NoError(t, err)
	assert.True(t, strings.Contains(string(doc), keyLine), "docs/PROTOCOL.md lacks: %s", keyLine)
	examples, err := docexamples.Read("../docs/PROTOCOL.md")
	require.NoError(t, err)
	got, ok := examples["sealed"]
	require.True(t, ok, "docs/PROTOCOL.md lacks the sealed example")
	assert.Equal(t, sealed, got, "the sealed example differs:\n%s", sb.String())
	o := NewOpener(r, 7)
	opened, err := o.Open(got, time.UnixMilli(1_700_000_000_000))
	require.NoError(t, err)
	assert.Equal(t, ackFrame(t, 1), opened.Inner)
}
