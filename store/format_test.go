package store

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/internal/docexamples"
	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// exampleFP is docs/PROTOCOL.md's example filter: 4 blocked rows, k = 6.
var exampleFP = filter.Fingerprint{Layout: filter.Blocked, Hash: filter.XXH3, K: 6, RowBits: 512, Rows: 4}

// formatExamples builds every file documented in docs/FORMAT.md but the
// CATALOG, whose payload is gossip's catalog bytes: gossip's
// TestCatalogFormatDocExample builds that one (and prints it when it
// differs), TestFormatDocExamples checks the file around the payload.
func formatExamples(t *testing.T) map[string][]byte {
	def := Definition{Name: "default", FP: exampleFP, Capacity: 1000, FPRate: 0.01}
	seg := appendHashRecord(appendLogHeader(nil, exampleFP, 3), []uint64{0x1122334455667788, 0x2a})

	f, err := filter.NewFromFingerprint(exampleFP, 0)
	require.NoError(t, err)
	row := make([]byte, 64)
	row[0], row[63] = 0x01, 0x80
	_, err = f.MergeRows(exampleFP, 2, row, nil)
	require.NoError(t, err)
	f.Advance()
	dir := t.TempDir()
	w, err := newCkptWriter(OSFS{}, dir, ckptHeader{kind: ckptFull, fp: exampleFP, seq: 1, covers: 3})
	require.NoError(t, err)
	_, err = wire.FrameRows(f, 0, []filter.Run{{First: 0, Count: 4}}, ckptFrame, w.block)
	require.NoError(t, err)
	require.NoError(t, w.commit())
	ckpt, err := os.ReadFile(filepath.Join(dir, checkpointName(1)))
	require.NoError(t, err)
	return map[string][]byte{"filter": encodeDefinition(def, holding{first: 1, last: 1}), "log-segment": seg, "checkpoint": ckpt}
}

// TestFormatDocExamples keeps docs/FORMAT.md honest: every hex example
// there is what the code writes, and reads back (the CATALOG example's
// payload is gossip's to check). Run with STORE_PRINT_EXAMPLES=1 to print
// them.
func TestFormatDocExamples(t *testing.T) {
	found, err := docexamples.Read("../docs/FORMAT.md")
	require.NoError(t, err)
	for name, b := range formatExamples(t) {
		if os.Getenv("STORE_PRINT_EXAMPLES") != "" {
			docexamples.Print(name, b)
		}
		got, ok := found[name]
		if assert.True(t, ok, "docs/FORMAT.md lacks example %s", name) {
			assert.True(t, bytes.Equal(b, got), "example %s differs from the code:\n%s", name, docexamples.Hex(b))
		}
	}
	d, h, _, err := decodeDefinition(found["filter"])
	require.NoError(t, err)
	assert.Equal(t, "default", d.Name)
	assert.Equal(t, holding{first: 1, last: 1}, h)
	recs, err := segmentRecords(Definition{FP: exampleFP}, found["log-segment"])
	require.NoError(t, err)
	assert.Len(t, recs, 1)
	f, r, err := checkpointRows(Definition{FP: exampleFP}, found["checkpoint"])
	require.NoError(t, err)
	assert.Empty(t, r.damage)
	assert.Equal(t, uint64(1), r.rows)
	b, _ := f.CopyRows(nil, 2, 1)
	assert.Equal(t, byte(0x80), b[63])
	payload, err := decodeCatalogFile(found["catalog"])
	require.NoError(t, err, "docs/FORMAT.md's catalog example")
	assert.True(t, bytes.Equal(found["catalog"], encodeCatalogFile(payload)), "the catalog example's file around its payload differs from the code")
}
