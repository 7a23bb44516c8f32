package dump

import (
	"bytes"
	"os"
	"testing"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/internal/docexamples"
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
	found, err := docexamples.Read("../docs/FORMAT.md")
	require.NoError(t, err)
	for i, name := range []string{"dump-header", "dump-rows"} {
		if os.Getenv("DUMP_PRINT_EXAMPLES") != "" {
			docexamples.Print(name, chunks[i])
		}
		assert.True(t, bytes.Equal(chunks[i], found[name]), "docs/FORMAT.md's %s differs from the encoder:\n%s", name, docexamples.Hex(chunks[i]))
	}
}
