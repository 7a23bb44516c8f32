package dump

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFormatDocExamples keeps docs/FORMAT.md's dump chunks honest: the
// dump of filter "users" (1,000 keys at 1 %, NONSCALING) holding "alice"
// is exactly its examples. DUMP_PRINT_EXAMPLES=1 prints them.
func TestFormatDocExamples(t *testing.T) {
	r := openRegistry(t, "n1")
	f := makeFilter(t, r, "users", registry.Sizing{Layout: filter.Blocked, Capacity: 1000, FPRate: 0.01})
	_, _, err := f.Add([][]byte{[]byte("alice")}, make([]byte, 1), &store.Scratch{})
	require.NoError(t, err)
	chunks := dumpAll(t, f)
	require.Len(t, chunks, 2)
	doc, err := os.ReadFile("../docs/FORMAT.md")
	require.NoError(t, err)
	re := regexp.MustCompile("(?s)<!-- example: (dump-[a-z]+) -->\n```\n(.*?)```")
	found := map[string][]byte{}
	for _, m := range re.FindAllSubmatch(doc, -1) {
		b, err := hex.DecodeString(strings.Join(strings.Fields(string(m[2])), ""))
		require.NoError(t, err, "example %s", m[1])
		found[string(m[1])] = b
	}
	for i, name := range []string{"dump-header", "dump-rows"} {
		if os.Getenv("DUMP_PRINT_EXAMPLES") != "" {
			fmt.Printf("<!-- example: %s -->\n```\n%s```\n\n", name, hexLines(chunks[i]))
		}
		assert.True(t, bytes.Equal(chunks[i], found[name]), "docs/FORMAT.md's %s differs from the encoder:\n%s", name, hexLines(chunks[i]))
	}
}

func hexLines(b []byte) string {
	var sb strings.Builder
	for i := 0; i < len(b); i += 16 {
		for j, c := range b[i:min(i+16, len(b))] {
			if j > 0 {
				sb.WriteByte(' ')
			}
			fmt.Fprintf(&sb, "%02x", c)
		}
		sb.WriteByte('\n')
	}
	return sb.String()
}
