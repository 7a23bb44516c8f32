package store

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/require"
)

// realFiles makes a real checkpoint of blocks (a sparse filter) and a
// real log segment, as a node writes them, and returns their bytes.
func realFiles(t testing.TB) (def Definition, ckpt, seg []byte) {
	dir := t.TempDir()
	def, mk := blockedDef(t, 300_000)
	s, f, _ := open(t, dir, def, mk, opts())
	add(s, f, keyList("ckpt", 2500)...) // several blocks, too sparse for an image
	_, err := s.Checkpoint()
	require.NoError(t, err)
	for i := range 20 {
		add(s, f, keyList(string(rune('a'+i)), 1+i*7)...)
	}
	crash(t, s)
	ckpts, logs, err := s.files()
	require.NoError(t, err)
	require.Equal(t, ckptFull, s.kind(ckpts[len(ckpts)-1]))
	ckpt, err = os.ReadFile(filepath.Join(s.Dir(), checkpointName(ckpts[len(ckpts)-1])))
	require.NoError(t, err)
	seg, err = os.ReadFile(filepath.Join(s.Dir(), segmentName(logs[len(logs)-1])))
	require.NoError(t, err)
	return def, ckpt, seg
}

// realImage makes a real image checkpoint (a dense filter) and returns
// its definition, its bytes and the filter it holds.
func realImage(t testing.TB) (Definition, []byte, []byte) {
	dir := t.TempDir()
	def, mk := blockedDef(t, 150_000) // three blocks
	s, f, _ := open(t, dir, def, mk, opts())
	add(s, f, keyList("img", 150_000)...)
	require.NoError(t, s.Close())
	ckpts, _, err := s.files()
	require.NoError(t, err)
	require.Equal(t, ckptImage, s.kind(ckpts[len(ckpts)-1]))
	b, err := os.ReadFile(filepath.Join(s.Dir(), checkpointName(ckpts[len(ckpts)-1])))
	require.NoError(t, err)
	return def, b, rows(f)
}

// imageRows loads an image checkpoint held in b, through the file at
// path, mapped as the filter or OR-ed in.
func imageRows(t testing.TB, path string, def Definition, b []byte, adopt bool) (*filter.Filter, ckptRead, error) {
	require.NoError(t, os.WriteFile(path, b, 0o644))
	f, _ := filter.NewFromFingerprint(def.FP, 0)
	r, err := loadImage(OSFS{}, path, f, adopt)
	return f, r, err
}

// mutate damages a copy of b the way disks and crashes do: flipped bits,
// a truncation, a zeroed range, or garbage appended.
func mutate(rng *rand.Rand, b []byte) []byte {
	out := bytes.Clone(b)
	switch rng.IntN(4) {
	case 0:
		for range 1 + rng.IntN(8) {
			i := rng.IntN(len(out))
			out[i] ^= byte(1 << rng.IntN(8))
		}
	case 1:
		out = out[:rng.IntN(len(out))]
	case 2:
		i := rng.IntN(len(out))
		clear(out[i:min(len(out), i+1+rng.IntN(4096))])
	case 3:
		for range 1 + rng.IntN(100) {
			out = append(out, byte(rng.Uint32()))
		}
	}
	return out
}

// checkpointRows loads the blocks of a checkpoint that verify.
func checkpointRows(def Definition, b []byte) (*filter.Filter, ckptRead, error) {
	f, _ := filter.NewFromFingerprint(def.FP, 0)
	r, err := readCheckpoint(b, def.FP, func(s wire.RowSync) error {
		for first, rows := range s.Runs.All() {
			if err := f.LoadRows(s.FP, uint64(first), rows); err != nil {
				return err
			}
		}
		return nil
	})
	return f, r, err
}

// segmentRecords reads a segment's records until one does not verify.
func segmentRecords(def Definition, b []byte) (recs [][]byte, err error) {
	fp, _, off, err := decodeLogHeader(b)
	if err != nil {
		return nil, err
	}
	if fp != def.FP {
		return nil, ErrMismatch
	}
	for off < len(b) {
		_, n, err := nextRecord(b[off:])
		if err != nil {
			return recs, err
		}
		recs = append(recs, b[off:off+n])
		off += n
	}
	return recs, nil
}

// subset reports whether every bit of a is set in b (rows: whole words).
func subset(a, b []byte) bool {
	for i := 0; i+8 <= len(a); i += 8 {
		if binary.LittleEndian.Uint64(a[i:])&^binary.LittleEndian.Uint64(b[i:]) != 0 {
			return false
		}
	}
	return true
}

// 10,000 damaged copies of real files: each is detected or harmlessly
// repaired, nothing panics, and an undamaged file is never reported
// damaged. (Under the race detector, which slows byte loops tenfold, a
// tenth of them: make test runs the whole test without it too.)
func TestCorruption(t *testing.T) {
	copies := 10_000
	if raceEnabled {
		copies /= 10
	}
	def, ckpt, seg := realFiles(t)
	good, r, err := checkpointRows(def, ckpt)
	require.NoError(t, err)
	require.Empty(t, r.damage)
	require.Greater(t, r.blocks, uint64(2), "several blocks: damage in one leaves the others")
	goodRows := rows(good)
	goodRecs, err := segmentRecords(def, seg)
	require.NoError(t, err)
	require.Len(t, goodRecs, 20)

	imgDef, img, imgRows := realImage(t)
	imgPath := filepath.Join(t.TempDir(), "image.ckpt")
	f, r, err := imageRows(t, imgPath, imgDef, img, true)
	require.NoError(t, err)
	require.Empty(t, r.damage)
	require.Equal(t, imgRows, rows(f), "the image is the filter")
	require.Greater(t, len(img), imageOffset+2*imageBlock, "several blocks")

	rng := rand.New(rand.NewPCG(1, 2))
	var detected, harmless, repaired int
	for i := range copies {
		if i%3 == 2 {
			b := mutate(rng, img)
			f, r, err := imageRows(t, imgPath, imgDef, b, i%2 == 0)
			switch {
			case bytes.Equal(b, img):
				require.NoError(t, err, "an undamaged image")
				require.Empty(t, r.damage, "an undamaged image is never reported damaged")
				harmless++
			case err != nil || len(r.damage) > 0:
				require.True(t, subset(rows(f), imgRows), "mutation %d: only rows that verify are kept", i)
				detected++
			default:
				require.Equal(t, imgRows, rows(f), "mutation %d: undetected, so it must have changed nothing", i)
				harmless++
			}
			continue
		}
		if i%3 == 0 {
			b := mutate(rng, ckpt)
			f, r, err := checkpointRows(def, b)
			got := rows(f)
			switch {
			case bytes.Equal(b, ckpt):
				require.NoError(t, err, "an undamaged checkpoint")
				require.Empty(t, r.damage, "an undamaged checkpoint is never reported damaged")
				harmless++
			case err != nil || len(r.damage) > 0:
				require.True(t, subset(got, goodRows), "mutation %d: only rows that verify are kept", i)
				detected++
			default:
				require.Equal(t, goodRows, got, "mutation %d: undetected, so it must have changed nothing", i)
				harmless++
			}
			continue
		}
		b := mutate(rng, seg)
		recs, err := segmentRecords(def, b)
		switch {
		case bytes.Equal(b, seg):
			require.NoError(t, err)
			harmless++
		default:
			// Cut at the first record that does not verify: what is kept is
			// a prefix of what was written (a cut exactly between records
			// is a torn tail too).
			require.LessOrEqual(t, len(recs), len(goodRecs))
			require.True(t, slices.EqualFunc(recs, goodRecs[:len(recs)], bytes.Equal), "mutation %d: records before the damage are intact", i)
			if err == nil {
				require.Less(t, len(b), len(seg), "mutation %d: a damaged segment read whole", i)
			}
			repaired++
		}
	}
	t.Logf("checkpoints and images: %d damaged copies detected; logs: %d cut at the last good record; %d changed nothing", detected, repaired, harmless)
}
