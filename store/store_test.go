package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rmbd/rmbd/filter"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/zeebo/xxh3"
)

func blockedDef(t testing.TB, capacity uint64) (Definition, func() *filter.Filter) {
	mk := func() *filter.Filter {
		f, err := filter.New(filter.Config{Layout: filter.Blocked, Capacity: capacity, FPRate: 0.01})
		require.NoError(t, err)
		return f
	}
	return Definition{Name: "default", FP: mk().Fingerprint(), Capacity: capacity, FPRate: 0.01}, mk
}

func opts() Options {
	o := DefaultOptions()
	o.CheckpointInterval = time.Hour // tests checkpoint by hand
	return o
}

// open opens dir for def into a new filter and fails the test on error.
func open(t testing.TB, dir string, def Definition, mk func() *filter.Filter, o Options) (*Store, *filter.Filter, Recovery) {
	t.Helper()
	f := mk()
	s, rec, err := Open(dir, def, f, o)
	require.NoError(t, err)
	return s, f, rec
}

// add adds keys, in batches as frames bring them, and returns what an
// acknowledgement of the last batch waits for.
func add(s *Store, _ *filter.Filter, keys ...string) Wait {
	_, w := addFresh(s, keys...)
	return w
}

// addFresh is add also returning how many keys were new: those logged.
func addFresh(s *Store, keys ...string) (int, Wait) {
	var sc Scratch
	var w Wait
	fresh := 0
	for len(keys) > 0 {
		n := min(len(keys), 4096)
		raw := make([][]byte, n)
		for i, k := range keys[:n] {
			raw[i] = []byte(k)
		}
		f, wait, err := s.Add(raw, make([]byte, (n+7)/8), &sc)
		if err != nil {
			panic(err) // tests add to a healthy store
		}
		fresh, w = fresh+f, wait
		keys = keys[n:]
	}
	return fresh, w
}

func keyList(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

// crash stops s the way kill -9 would leave its files: what was written
// to the OS stays, nothing more is written, the lock goes.
func crash(t testing.TB, s *Store) {
	t.Helper()
	require.NoError(t, s.Log().WaitSynced(context.Background(), 0))
	s.l.mu.Lock()
	s.l.closing = true // the writer stops at its next wake-up without a checkpoint
	s.l.mu.Unlock()
	select {
	case s.l.kick <- struct{}{}:
	default:
	}
	<-s.l.done
	s.data.lock.Close()
}

func rows(f *filter.Filter) []byte {
	b, _ := f.CopyRows(make([]byte, 0, f.Rows()*uint64(f.RowBytes())), 0, f.Rows())
	return b
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	def, mk := blockedDef(t, 100_000)
	s, f, rec := open(t, dir, def, mk, opts())
	assert.Zero(t, rec.Checkpoints)
	add(s, f, keyList("a", 1000)...)
	_, err := s.Checkpoint()
	require.NoError(t, err)
	add(s, f, keyList("b", 1000)...)
	require.NoError(t, s.Close())

	s2, f2, rec := open(t, dir, def, mk, opts())
	defer s2.Close()
	assert.Equal(t, rows(f), rows(f2), "every row back")
	assert.Equal(t, 0, rec.Segments, "the last checkpoint covered every segment: nothing to replay")
	for _, k := range append(keyList("a", 1000), keyList("b", 1000)...) {
		require.True(t, f2.Has([]byte(k)))
	}
}

// Discard closes without the last checkpoint Close writes (for a folder
// about to be removed): the log still holds every add, and a start
// replays it.
func TestDiscardWritesNoCheckpoint(t *testing.T) {
	dir := t.TempDir()
	def, mk := blockedDef(t, 100_000)
	s, f, _ := open(t, dir, def, mk, opts())
	add(s, f, keyList("a", 1000)...)
	require.NoError(t, s.Discard())
	assert.Zero(t, s.Stats().Checkpoints)
	require.NoError(t, s.Discard(), "twice: nothing")

	s2, f2, rec := open(t, dir, def, mk, opts())
	assert.Equal(t, rows(f), rows(f2))
	assert.Zero(t, rec.Checkpoints)
	assert.Positive(t, rec.Segments, "the log replayed")
	require.NoError(t, s2.Close())
	assert.Equal(t, uint64(1), s2.Stats().Checkpoints, "Close writes one")
}

func TestCrashReplaysTheLog(t *testing.T) {
	dir := t.TempDir()
	def, mk := blockedDef(t, 100_000)
	s, f, _ := open(t, dir, def, mk, opts())
	add(s, f, keyList("before", 500)...)
	_, err := s.Checkpoint()
	require.NoError(t, err)
	add(s, f, keyList("after", 500)...)
	crash(t, s)

	s2, f2, rec := open(t, dir, def, mk, opts())
	assert.True(t, bytes.Equal(rows(f), rows(f2)))
	assert.Equal(t, 1, rec.Checkpoints)
	assert.Equal(t, 500, rec.Keys, "only what came after the checkpoint is in the log")

	// The checkpoint that deletes the replayed segments must hold what
	// they held.
	_, err = s2.Checkpoint()
	require.NoError(t, err)
	crash(t, s2)
	s3, f3, rec := open(t, dir, def, mk, opts())
	defer s3.Close()
	assert.Zero(t, rec.Keys, "no log left to replay")
	assert.True(t, bytes.Equal(rows(f), rows(f3)), "nothing lost")
}

func TestTornTailIsCut(t *testing.T) {
	dir := t.TempDir()
	def, mk := blockedDef(t, 100_000)
	s, f, _ := open(t, dir, def, mk, opts())
	add(s, f, keyList("one", 10)...)
	add(s, f, keyList("two", 10)...)
	crash(t, s)
	seg := filepath.Join(s.Dir(), segmentName(1))
	st, err := os.Stat(seg)
	require.NoError(t, err)
	require.NoError(t, os.Truncate(seg, st.Size()-5)) // the second record torn

	s2, f2, rec := open(t, dir, def, mk, opts())
	defer s2.Close()
	assert.Equal(t, 1, rec.Truncated)
	assert.Equal(t, 10, rec.Keys)
	for _, k := range keyList("one", 10) {
		assert.True(t, f2.Has([]byte(k)))
	}
	st2, err := os.Stat(seg)
	if err == nil { // cut in place, unless a checkpoint since removed it
		assert.Equal(t, int64(logHeaderSize+recordHead+80+8), st2.Size(), "cut after the first record")
	}
}

func TestAnotherFilterIsRefused(t *testing.T) {
	dir := t.TempDir()
	def, mk := blockedDef(t, 100_000)
	s, _, _ := open(t, dir, def, mk, opts())
	require.NoError(t, s.Close())
	other, mkOther := blockedDef(t, 5000)
	_, _, err := Open(dir, other, mkOther(), opts())
	assert.ErrorIs(t, err, ErrMismatch)
	assert.ErrorContains(t, err, "capacity 100000")
	assert.ErrorContains(t, err, "capacity 5000")
}

func TestOneNodePerDirectory(t *testing.T) {
	dir := t.TempDir()
	def, mk := blockedDef(t, 1000)
	s, _, _ := open(t, dir, def, mk, opts())
	_, _, err := Open(dir, def, mk(), opts())
	assert.ErrorIs(t, err, ErrLocked)
	require.NoError(t, s.Close())
	s, _, _ = open(t, dir, def, mk, opts())
	require.NoError(t, s.Close(), "free again once closed")
}

func TestDamagedCheckpoint(t *testing.T) {
	dir := t.TempDir()
	def, mk := blockedDef(t, 2_000_000) // 17 blocks of about 900 rows
	s, f, _ := open(t, dir, def, mk, opts())
	add(s, f, keyList("k", 20_000)...)
	require.NoError(t, s.Close())
	ckpt := filepath.Join(s.Dir(), checkpointName(1))
	b, err := os.ReadFile(ckpt)
	require.NoError(t, err)
	b[ckptHeaderSize+100] ^= 0x40 // inside the first block
	require.NoError(t, os.WriteFile(ckpt, b, 0o644))

	_, _, err = Open(dir, def, mk(), opts())
	assert.ErrorIs(t, err, ErrDamaged)
	assert.ErrorContains(t, err, "--repair")

	o := opts()
	o.Repair = true
	s2, f2, rec := open(t, dir, def, mk, o)
	assert.Equal(t, []string{checkpointName(1)}, rec.Damaged)
	kept := 0
	for _, k := range keyList("k", 20_000) {
		if f2.Has([]byte(k)) {
			kept++
		}
	}
	assert.Less(t, kept, 20_000, "the damaged block's rows are gone")
	assert.Greater(t, kept, 20_000*9/10, "every other block kept: one block is a seventeenth")
	require.NoError(t, s2.Close())
	_, err = os.Stat(ckpt + ".damaged")
	assert.NoError(t, err, "set aside, not deleted")
	s3, _, rec := open(t, dir, def, mk, opts())
	defer s3.Close()
	assert.Empty(t, rec.Damaged, "repaired: the next start is clean")
}

// A folder whose checkpoints were deleted (FILTER kept) would start with
// less than it held: the start refuses, naming the missing file, unless
// repairing, which starts with what is left, says what was missing and
// writes a full checkpoint so that the next start is clean.
func TestMissingCheckpointsRefused(t *testing.T) {
	dir := t.TempDir()
	def, mk := blockedDef(t, 100_000)
	s, f, _ := open(t, dir, def, mk, opts())
	add(s, f, keyList("a", 50_000)...)
	_, err := s.Checkpoint() // full: 1
	require.NoError(t, err)
	add(s, f, keyList("b", 1000)...)
	_, err = s.Checkpoint() // delta: 2
	require.NoError(t, err)
	add(s, f, keyList("c", 1000)...) // in the log
	crash(t, s)
	require.NoError(t, os.Remove(filepath.Join(s.Dir(), checkpointName(1))))

	_, _, err = Open(dir, def, mk(), opts())
	require.ErrorIs(t, err, ErrMissing)
	assert.ErrorContains(t, err, "missing from the data directory: "+filepath.Join(s.Dir(), checkpointName(1)), "naming the first missing file")
	assert.ErrorContains(t, err, "--repair")

	o := opts()
	o.Repair = true
	s2, f2, rec := open(t, dir, def, mk, o)
	assert.Equal(t, []string{checkpointName(1)}, rec.Missing)
	for _, k := range append(keyList("b", 1000), keyList("c", 1000)...) {
		require.True(t, f2.Has([]byte(k)), "what is left is kept")
	}
	require.NoError(t, s2.Close())
	s3, _, rec := open(t, dir, def, mk, opts())
	assert.Empty(t, rec.Missing, "repaired: the next start is clean")
	require.NoError(t, s3.Close())
}

// A checkpoint writes only the rows that changed since the one before.
func TestCheckpointWritesOnlyChangedRows(t *testing.T) {
	dir := t.TempDir()
	def, mk := blockedDef(t, 1_000_000)
	s, f, _ := open(t, dir, def, mk, opts())
	defer s.Close()
	add(s, f, keyList("first", 1000)...)
	info, err := s.Checkpoint()
	require.NoError(t, err)
	assert.True(t, info.Full, "the first checkpoint is a full one")

	f.Advance()
	before := f.Generation()
	add(s, f, keyList("second", 1000)...)
	f.Advance()
	changed := uint64(0)
	for r := range f.ChangedRuns(before) {
		changed += r.Count
	}
	info, err = s.Checkpoint()
	require.NoError(t, err)
	assert.False(t, info.Full)
	assert.Equal(t, changed, info.Rows)
	ratio := float64(info.Bytes) / float64(changed*64)
	t.Logf("delta checkpoint: %d rows, %d bytes, %.3f × rows × 64 B", info.Rows, info.Bytes, ratio)
	assert.Less(t, ratio, 1.2)

	info, err = s.Checkpoint()
	require.NoError(t, err)
	assert.Zero(t, info.Rows, "nothing changed: nothing written")
}

func TestDeltasCompactIntoAFullCheckpoint(t *testing.T) {
	dir := t.TempDir()
	def, mk := blockedDef(t, 100_000)
	s, f, _ := open(t, dir, def, mk, opts())
	for i := range maxDeltas + 2 {
		add(s, f, keyList(fmt.Sprint("round", i), 100)...)
		_, err := s.Checkpoint()
		require.NoError(t, err)
	}
	ckpts, logs, err := s.files()
	require.NoError(t, err)
	assert.LessOrEqual(t, len(ckpts), maxDeltas+1, "a full checkpoint replaced the deltas")
	assert.Len(t, logs, 1, "only the segment being written")
	require.NoError(t, s.Close())
	s2, f2, _ := open(t, dir, def, mk, opts())
	defer s2.Close()
	assert.Equal(t, rows(f), rows(f2))
}

// Flush, many times in a row (each chunk of a load under --fsync
// always), writes deltas, and a full checkpoint only once the deltas
// hold as many bytes as one: the whole writes about what changed, where
// Checkpoint's full one every maxDeltas writes the filter again and
// again.
func TestFlushesWriteWhatChanged(t *testing.T) {
	def, mk := blockedDef(t, 200_000)
	run := func(ckpt func(*Store) (CheckpointInfo, error)) (written int64, size uint64) {
		dir := t.TempDir()
		s, f, _ := open(t, dir, def, mk, opts())
		per := f.Rows() / 64
		for i := range uint64(64) { // a load's chunks: each its own stretch of rows, every word set
			data := bytes.Repeat([]byte{0xa5}, int(per)*f.RowBytes())
			_, err := f.MergeRows(f.Fingerprint(), i*per, data, nil)
			require.NoError(t, err)
			info, err := ckpt(s)
			require.NoError(t, err)
			written += info.Bytes
		}
		want := rows(f)
		require.NoError(t, s.Close())
		s2, f2, _ := open(t, dir, def, mk, opts())
		defer s2.Close()
		assert.Equal(t, want, rows(f2))
		return written, f.SizeBytes()
	}
	flushed, size := run((*Store).Flush)
	checkpointed, _ := run((*Store).Checkpoint)
	t.Logf("64 flushes: %d bytes written, Checkpoint's: %d; the filter: %d", flushed, checkpointed, size)
	assert.Less(t, flushed, checkpointed/2)
	assert.Less(t, flushed, 4*int64(size))
}

// Flushes on a store with no full checkpoint yet (a filter a load just
// made) pile up no more than maxFlushDeltas deltas, nor more bytes of
// them than the filter: a full checkpoint then replaces them.
func TestFlushesAreBounded(t *testing.T) {
	dir := t.TempDir()
	def, mk := blockedDef(t, 100_000)
	s, f, _ := open(t, dir, def, mk, opts())
	full := 0
	for i := range 200 {
		_, err := f.MergeRows(f.Fingerprint(), uint64(i%int(f.Rows())), bytes.Repeat([]byte{byte(i) | 1}, f.RowBytes()), nil)
		require.NoError(t, err)
		info, err := s.Flush()
		require.NoError(t, err)
		if info.Full {
			full++
		}
	}
	ckpts, _, err := s.files()
	require.NoError(t, err)
	assert.LessOrEqual(t, len(ckpts), maxFlushDeltas+1)
	assert.Positive(t, full)
	require.NoError(t, s.Close())
}

func TestClassicLogsKeys(t *testing.T) {
	dir := t.TempDir()
	f := filter.NewClassic()
	def := Definition{Name: "default", FP: f.Fingerprint()}
	s, _, err := Open(dir, def, f, opts())
	require.NoError(t, err)
	bits := make([]byte, 1)
	fresh, _, err := s.Add([][]byte{[]byte("abc"), []byte("")}, bits, &Scratch{})
	require.NoError(t, err)
	assert.Equal(t, 2, fresh)
	assert.Equal(t, byte(0b11), bits[0], "each key changed the filter")
	fresh = s.AddUnacked([][]byte{[]byte("abc")}, make([]byte, 1), &Scratch{})
	assert.Zero(t, fresh, "present: not logged again")
	crash(t, s)
	f2 := filter.NewClassic()
	s2, rec, err := Open(dir, def, f2, opts())
	require.NoError(t, err)
	defer s2.Close()
	assert.Equal(t, 2, rec.Keys)
	assert.True(t, f2.Has([]byte("abc")))
	assert.True(t, f2.Has([]byte("")))
}

// With FsyncAlways, concurrent adds share fsyncs (group commit) and every
// one waits until its record is on disk.
func TestGroupCommit(t *testing.T) {
	dir := t.TempDir()
	def, mk := blockedDef(t, 100_000)
	o := opts()
	o.Fsync = FsyncAlways
	s, f, _ := open(t, dir, def, mk, o)
	defer s.Close()
	const writers, each = 16, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				wait := add(s, f, fmt.Sprintf("w%d-%d", w, i))
				if err := wait.Wait(context.Background()); err != nil {
					t.Error(err)
					return
				}
				if !wait.Synced() {
					t.Error("acknowledged before its record was on disk")
				}
			}
		}()
	}
	wg.Wait()
	fsyncs := s.Log().Fsyncs()
	t.Logf("%d adds, %d fsyncs", writers*each, fsyncs)
	assert.Less(t, fsyncs, uint64(writers*each), "fsyncs shared")

	done := make(chan error, 1)
	add(s, f, "callback").Then(func(err error) { done <- err })
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("callback never ran")
	}
}

func TestFolderNames(t *testing.T) {
	assert.Equal(t, "default", FolderName("default"))
	assert.Equal(t, "day-2026.11.23", FolderName("day-2026.11.23"))
	assert.Equal(t, "v-0123@0000000000000003", FolderName("v-0123@0000000000000003"), "a segment's folder")
	for _, odd := range []string{"Default", "a/b", "..", ".tmp-x", "tenant:1", string(make([]byte, 65))} {
		n := FolderName(odd)
		assert.Regexp(t, `^f-[0-9a-f]{32}$`, n, odd)
	}
	assert.NotEqual(t, FolderName("A"), FolderName("a"), "case-insensitive file systems cannot merge them")
}

// A dense filter's full checkpoint is an image, mapped as the filter on
// restart; what comes after it (a delta, the log) is OR-ed in over it,
// and the mapped filter takes adds like any other.
func TestImageRoundTrip(t *testing.T) {
	dir := t.TempDir()
	def, mk := blockedDef(t, 100_000)
	s, f, _ := open(t, dir, def, mk, opts())
	add(s, f, keyList("dense", 100_000)...)
	_, err := s.Checkpoint()
	require.NoError(t, err)
	ckpts, _, err := s.files()
	require.NoError(t, err)
	require.Equal(t, ckptImage, s.kind(ckpts[0]))
	add(s, f, keyList("delta", 300)...)
	_, err = s.Checkpoint()
	require.NoError(t, err)
	logged, _ := addFresh(s, keyList("log", 300)...)
	crash(t, s)

	s2, f2, rec := open(t, dir, def, mk, opts())
	assert.Equal(t, 2, rec.Checkpoints)
	assert.Equal(t, logged, rec.Keys, "the log holds the keys that were new")
	assert.Greater(t, logged, 250)
	for _, p := range []string{"dense", "delta", "log"} {
		missing := 0
		for _, k := range keyList(p, 300) {
			if !f2.Has([]byte(k)) {
				missing++
			}
		}
		assert.Zero(t, missing, "keys %s missing", p)
	}
	if a, b := rows(f), rows(f2); !bytes.Equal(a, b) {
		for i := 0; i < len(a); i += 64 {
			if !bytes.Equal(a[i:i+64], b[i:i+64]) {
				t.Logf("row %d: want %x\n got %x", i/64, a[i:i+16], b[i:i+16])
			}
		}
		t.Fatal("rows differ")
	}
	add(s2, f2, keyList("after", 1000)...)
	for _, k := range keyList("after", 1000) {
		require.True(t, f2.Has([]byte(k)))
	}
	require.NoError(t, s2.Close())
	s3, f3, _ := open(t, dir, def, mk, opts())
	defer s3.Close()
	assert.True(t, bytes.Equal(rows(f2), rows(f3)))
}

// A write error is not the end of the log. The segment's file is closed
// under the writer, as a failing disk takes it away: the waiting add
// fails, and then the store's own retries start a fresh segment and take
// adds to keep again. (The log's first error used to be final until a
// restart.)
func TestFailedWriteIsNotForever(t *testing.T) {
	ctx := context.Background()
	def, mk := blockedDef(t, 100_000)
	o := opts()
	o.Fsync, o.RetryInterval = FsyncAlways, time.Millisecond
	s, f, _ := open(t, t.TempDir(), def, mk, o)
	defer s.Close()
	require.NoError(t, add(s, f, keyList("before", 100)...).Wait(ctx))
	s.l.f.Close()
	require.ErrorIs(t, add(s, f, keyList("during", 10)...).Wait(ctx), ErrUnwritable)

	s.Start()
	for changed := s.HealthChanged(); s.Health() != nil; changed = s.HealthChanged() {
		select {
		case <-changed:
		case <-time.After(10 * time.Second):
			t.Fatal("acknowledged adds still refused 10 s later")
		}
	}
	require.NoError(t, add(s, f, keyList("after", 10)...).Wait(ctx))
	for _, k := range keyList("during", 10) {
		require.True(t, f.Has([]byte(k)))
	}
}

// A bit flipped anywhere in a FILTER file is damage — the version's bytes
// too, which a file that does not verify cannot vouch for — so that
// --repair rewrites it; a file that verifies with a version this build
// does not know is a newer rmbd's, and refused as such. (Found by the
// simulator on the CATALOG file, which had the same fault.)
func TestDefinitionVersionFlipIsDamage(t *testing.T) {
	def, _ := blockedDef(t, 1000)
	b := encodeDefinition(def, holding{first: 1, last: 2})
	for i := range b {
		bad := bytes.Clone(b)
		bad[i] ^= 0x04
		_, _, _, err := decodeDefinition(bad)
		assert.ErrorIs(t, err, ErrDamaged, "byte %d flipped", i)
	}
	newer := bytes.Clone(b)
	newer[len(defMagic)+1] = 9
	newer = binary.BigEndian.AppendUint64(newer[:len(newer)-8], xxh3.Hash(newer[:len(newer)-8]))
	_, _, _, err := decodeDefinition(newer)
	assert.ErrorIs(t, err, ErrVersion)
}

// Two closes of one store at once (a drop and a slice dropped out of its
// window, both Discard): one closes it, the other does nothing.
func TestConcurrentCloses(t *testing.T) {
	def, mk := blockedDef(t, 1000)
	for range 300 {
		s, f, _ := open(t, t.TempDir(), def, mk, opts())
		add(s, f, "k")
		s.Start()
		var wg sync.WaitGroup
		start := make(chan struct{})
		wg.Go(func() { <-start; s.Discard() })
		wg.Go(func() { <-start; s.Close() })
		close(start)
		wg.Wait()
	}
}
