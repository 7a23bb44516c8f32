package store_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/internal/faultfs"
	"github.com/rmbd/rmbd/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A data directory on a disk that fills up, fails an fsync, or dies
// halfway through recovering: the store's failures are states it leaves
// on its own, and no acknowledged add is ever lost.

var ctx = context.Background()

// disk is one filter's store on a fault-injecting file system.
type disk struct {
	t     *testing.T
	dir   string
	def   store.Definition
	fs    *faultfs.FS
	s     *store.Store
	f     *filter.Filter
	lines *lines
	sc    store.Scratch
}

// newDisk opens a fresh directory under FsyncAlways through a faultfs.
func newDisk(t *testing.T) *disk {
	f, err := filter.New(filter.Config{Layout: filter.Blocked, Capacity: 100_000, FPRate: 0.01})
	require.NoError(t, err)
	d := &disk{t: t, dir: t.TempDir(), def: store.Definition{Name: "default", FP: f.Fingerprint(), Capacity: 100_000, FPRate: 0.01}}
	d.reopen(faultfs.New(nil))
	return d
}

// reopen opens the directory again through fsys, as a restart does.
func (d *disk) reopen(fsys *faultfs.FS) store.Recovery {
	d.t.Helper()
	f, err := filter.NewFromFingerprint(d.def.FP, 0)
	require.NoError(d.t, err)
	o := store.DefaultOptions()
	o.Fsync, o.CheckpointInterval, o.FS = store.FsyncAlways, time.Hour, fsys
	d.lines = &lines{}
	o.Logger = slog.New(d.lines)
	s, rec, err := store.Open(d.dir, d.def, f, o)
	require.NoError(d.t, err, "the directory opens: nothing damaged, nothing missing")
	d.s, d.f, d.fs = s, f, fsys
	return rec
}

// crash stops the store as kill -9 would and restarts it on a healthy
// disk: what the process wrote stays, nothing more is written.
func (d *disk) crash() store.Recovery {
	d.t.Helper()
	d.fs.Crash()
	d.s.Close() // the dead process's goroutines; every call fails
	return d.reopen(faultfs.New(nil))
}

// ack adds keys as acknowledged adds and waits for the disk.
func (d *disk) ack(keys [][]byte) error {
	_, w, err := d.s.Add(keys, make([]byte, (len(keys)+7)/8), &d.sc)
	if err != nil {
		return err
	}
	return w.Wait(ctx)
}

// unacked adds keys nobody waits for.
func (d *disk) unacked(keys [][]byte) {
	d.s.AddUnacked(keys, make([]byte, (len(keys)+7)/8), &d.sc)
}

// missing counts the keys the filter lacks.
func (d *disk) missing(keys [][]byte) int {
	n := 0
	for _, k := range keys {
		if !d.f.Has(k) {
			n++
		}
	}
	return n
}

// rows returns every row of the filter.
func (d *disk) rows() []byte {
	b, _ := d.f.CopyRows(nil, 0, d.f.Rows())
	return b
}

// segments lists the log segments in the filter's folder.
func (d *disk) segments() []string {
	ents, err := os.ReadDir(d.s.Dir())
	require.NoError(d.t, err)
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "log-") {
			out = append(out, e.Name())
		}
	}
	return out
}

func keys(prefix string, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = fmt.Appendf(nil, "%s-%d", prefix, i)
	}
	return out
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// lines is a slog handler that keeps what was logged.
type lines struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *lines) Enabled(context.Context, slog.Level) bool { return true }
func (l *lines) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *lines) WithGroup(string) slog.Handler            { return l }
func (l *lines) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r)
	return nil
}

// count counts the lines at level whose message holds msg.
func (l *lines) count(level slog.Level, msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.recs {
		if r.Level == level && strings.Contains(r.Message, msg) {
			n++
		}
	}
	return n
}

// fill fills the disk in the middle of an acknowledged add: the write of
// its record is cut short and it fails through its Wait, though it was
// applied. It returns the keys of that add and its Wait.
func (d *disk) fill() ([][]byte, store.Wait) {
	d.t.Helper()
	d.fs.Inject(faultfs.Fault{Ops: faultfs.Full, Room: 1000})
	torn := keys("torn", 1000) // a record of 8 kB: 1 kB of it is written
	_, w, err := d.s.Add(torn, make([]byte, 125), &d.sc)
	require.NoError(d.t, err, "taken: the disk has not failed yet")
	err = w.Wait(ctx)
	require.ErrorIs(d.t, err, store.ErrUnwritable)
	require.ErrorIs(d.t, err, syscall.ENOSPC)
	return torn, w
}

// The disk fills up under FsyncAlways: the adds acknowledged before are
// kept; while it is full, adds to acknowledge are refused before they
// are applied, others are served; once space is back a retry ends the
// failure, and a restart finds every add, each counted once.
func TestFullDiskIsAState(t *testing.T) {
	d := newDisk(t)
	before := keys("before", 1000)
	require.NoError(t, d.ack(before))
	changed := d.s.HealthChanged()
	torn, tornWait := d.fill()

	assert.True(t, closed(changed), "the change is signalled")
	err := d.s.Health()
	require.ErrorIs(t, err, store.ErrUnwritable)
	seg := filepath.Join(d.s.Dir(), "log-0000000000000001.log")
	assert.Equal(t, "store: cannot write to the data directory: writing log segment "+seg+": write "+seg+": no space left on device", err.Error())

	held := d.rows()
	refused := keys("refused", 500)
	n, w, err := d.s.Add(refused, make([]byte, 63), &d.sc)
	require.ErrorIs(t, err, store.ErrUnwritable)
	assert.Zero(t, n)
	assert.True(t, w.Synced(), "nothing to wait for")
	assert.Equal(t, held, d.rows(), "a refused add is not applied")

	unacked := keys("unacked", 1000)
	d.unacked(unacked)
	assert.Zero(t, d.missing(unacked), "adds nobody waits for are served")
	assert.Zero(t, d.missing(before))

	require.ErrorIs(t, d.s.Retry(), syscall.ENOSPC, "still full")
	require.ErrorIs(t, d.s.Retry(), syscall.ENOSPC)
	require.Error(t, d.s.Health())

	d.fs.Heal()
	changed = d.s.HealthChanged()
	require.NoError(t, d.s.Retry())
	assert.True(t, closed(changed))
	require.NoError(t, d.s.Health())
	assert.NoError(t, tornWait.Wait(ctx), "the checkpoint holds the add whose record was torn: a Wait asked now says so")
	after := keys("after", 1000)
	require.NoError(t, d.ack(after), "acknowledged adds are taken again")
	assert.Len(t, d.segments(), 1, "the segments the failure left were deleted by the checkpoint")

	assert.Equal(t, 1, d.lines.count(slog.LevelError, ""), "one line when the log failed, none per add or retry")
	assert.Equal(t, 1, d.lines.count(slog.LevelWarn, "written again"), "one when it recovered")
	assert.Equal(t, uint64(1), d.s.Stats().Unwritable)

	want, keysBefore := d.rows(), d.f.Stats().EstimatedKeys
	require.NoError(t, d.s.Close())
	d.reopen(faultfs.New(nil))
	defer d.s.Close()
	for _, ks := range [][][]byte{before, torn, unacked, after} {
		assert.Zero(t, d.missing(ks), "%s…", ks[0])
	}
	assert.Equal(t, want, d.rows(), "every row, and no other")
	assert.Equal(t, keysBefore, d.f.Stats().EstimatedKeys, "nothing counted twice")
}

// A crash while the disk is full: the next start cuts the torn record,
// holds every acknowledged add, and works whether the space is back or
// not (it starts unwritable, and recovers like a running store).
func TestCrashWhileUnwritable(t *testing.T) {
	for _, stillFull := range []bool{false, true} {
		t.Run(fmt.Sprint("still full ", stillFull), func(t *testing.T) {
			d := newDisk(t)
			before := keys("before", 1000)
			require.NoError(t, d.ack(before))
			d.fill()
			d.unacked(keys("unacked", 1000))

			d.fs.Crash()
			d.s.Close()
			fsys := faultfs.New(nil)
			if stillFull {
				fsys.Inject(faultfs.Fault{Ops: faultfs.Full})
			}
			rec := d.reopen(fsys)
			assert.Equal(t, 1, rec.Truncated, "the torn record cut")
			assert.Zero(t, d.missing(before), "every acknowledged add")
			if !stillFull {
				require.NoError(t, d.s.Health())
				require.NoError(t, d.s.Close())
				return
			}
			require.ErrorIs(t, d.s.Health(), syscall.ENOSPC, "started unwritable")
			require.ErrorIs(t, d.ack(keys("refused", 10)), store.ErrUnwritable)
			later := keys("later", 1000)
			d.unacked(later)
			fsys.Heal()
			require.NoError(t, d.s.Retry())
			require.NoError(t, d.ack(keys("after", 10)))
			require.NoError(t, d.s.Close())
			d.reopen(faultfs.New(nil))
			defer d.s.Close()
			assert.Zero(t, d.missing(before))
			assert.Zero(t, d.missing(later), "the adds served meanwhile were checkpointed")
		})
	}
}

// A crash at every step of the recovery — the new segment, the
// checkpoint, the FILTER file, the deletions, the sync of the log — and,
// from each, a restart that holds every acknowledged add, and then another.
func TestCrashDuringRecovery(t *testing.T) {
	for step := 0; ; step++ {
		d := newDisk(t)
		before := keys("before", 1000)
		require.NoError(t, d.ack(before))
		torn, _ := d.fill()
		unacked := keys("unacked", 1000)
		d.unacked(unacked)
		d.fs.Heal()
		d.fs.CrashAfter(step)
		err := d.s.Retry()
		died := d.fs.Crashed()
		d.fs.CrashAfter(-1)
		if !died {
			require.NoError(t, err)
			require.NoError(t, d.ack(keys("after", 10)))
		}

		d.crash()
		require.Zero(t, d.missing(before), "step %d: every acknowledged add", step)
		if !died {
			assert.Zero(t, d.missing(torn), "recovered: what the failure kept in memory is on disk")
			assert.Zero(t, d.missing(unacked))
		}
		require.NoError(t, d.s.Close())
		d.reopen(faultfs.New(nil))
		require.Zero(t, d.missing(before), "step %d: and again", step)
		require.NoError(t, d.s.Close())
		if !died {
			t.Logf("recovery crashed at each of its %d steps", step)
			return
		}
	}
}

// The store retries on its own: once space is back, the next retry ends
// the failure.
func TestBackgroundRetry(t *testing.T) {
	f, err := filter.New(filter.Config{Layout: filter.Blocked, Capacity: 10_000, FPRate: 0.01})
	require.NoError(t, err)
	ffs := faultfs.New(nil)
	o := store.DefaultOptions()
	o.Fsync, o.FS, o.RetryInterval = store.FsyncAlways, ffs, 5*time.Millisecond
	s, _, err := store.Open(t.TempDir(), store.Definition{Name: "default", FP: f.Fingerprint(), Capacity: 10_000, FPRate: 0.01}, f, o)
	require.NoError(t, err)
	defer s.Close()
	s.Start()
	ffs.Inject(faultfs.Fault{Ops: faultfs.Full})
	_, w, err := s.Add(keys("k", 10), make([]byte, 2), &store.Scratch{})
	require.NoError(t, err)
	require.ErrorIs(t, w.Wait(ctx), syscall.ENOSPC)

	changed := s.HealthChanged()
	ffs.Heal()
	for s.Health() != nil {
		select {
		case <-changed:
			changed = s.HealthChanged()
		case <-time.After(10 * time.Second):
			t.Fatal("no recovery 10 s after space came back")
		}
	}
	_, w, err = s.Add(keys("after", 10), make([]byte, 2), &store.Scratch{})
	require.NoError(t, err)
	require.NoError(t, w.Wait(ctx))
}

// An fsync that fails (EIO): Linux may have dropped the pages it was to
// write, so the segment is given up, not written again; the retry's
// checkpoint holds what it held.
func TestFsyncErrorIsAState(t *testing.T) {
	d := newDisk(t)
	before := keys("before", 100)
	require.NoError(t, d.ack(before))
	d.fs.Inject(faultfs.Fault{Ops: faultfs.Sync, Errno: syscall.EIO})
	lost := keys("lost", 100)
	err := d.ack(lost)
	require.ErrorIs(t, err, syscall.EIO)
	require.ErrorContains(t, err, "fsync of log segment "+filepath.Join(d.s.Dir(), "log-0000000000000001.log"))
	require.ErrorIs(t, d.ack(keys("refused", 10)), store.ErrUnwritable)
	require.Error(t, d.s.Retry(), "fsyncs still fail")

	d.fs.Heal()
	require.NoError(t, d.s.Retry())
	require.NoError(t, d.ack(keys("after", 100)))
	d.crash()
	defer d.s.Close()
	assert.Zero(t, d.missing(before))
	assert.Zero(t, d.missing(lost))
}

// A checkpoint with no room fails and leaves the previous one, and the
// FILTER file, as they were; the log keeps every add meanwhile, and the
// next checkpoint succeeds once there is room.
func TestCheckpointWithoutRoom(t *testing.T) {
	d := newDisk(t)
	first := keys("first", 3000)
	require.NoError(t, d.ack(first))
	_, err := d.s.Checkpoint()
	require.NoError(t, err)
	ckpt := filepath.Join(d.s.Dir(), "ckpt-0000000000000001.ckpt")
	filterFile := filepath.Join(d.s.Dir(), "FILTER")
	was, _ := os.ReadFile(ckpt)
	wasFilter, _ := os.ReadFile(filterFile)

	second := keys("second", 3000)
	require.NoError(t, d.ack(second))
	d.fs.Inject(faultfs.Fault{Ops: faultfs.Full, Room: 200}) // the new segment fits, the checkpoint does not
	_, err = d.s.Checkpoint()
	require.ErrorIs(t, err, syscall.ENOSPC)
	now, _ := os.ReadFile(ckpt)
	nowFilter, _ := os.ReadFile(filterFile)
	assert.True(t, bytes.Equal(was, now), "the previous checkpoint intact")
	assert.True(t, bytes.Equal(wasFilter, nowFilter), "FILTER as it was")
	ents, _ := os.ReadDir(d.s.Dir())
	for _, e := range ents {
		assert.False(t, strings.HasPrefix(e.Name(), ".tmp-"), "no half-written file left: %s", e.Name())
	}
	assert.NoError(t, d.s.Health(), "the log itself wrote everything")

	d.fs.Heal()
	_, err = d.s.Checkpoint()
	require.NoError(t, err)
	d.crash()
	defer d.s.Close()
	assert.Zero(t, d.missing(first))
	assert.Zero(t, d.missing(second))
}

// racers are writers that add to a store whatever its disk does, and
// keep the keys whose acknowledgement succeeded.
type racers struct {
	mu   sync.Mutex
	kept [][]byte
	adds atomic.Int64
	stop chan struct{}
	wg   sync.WaitGroup
}

// race starts n writers on d. Half the keys of each acknowledged add
// were added just before without acknowledgement, so their bits are
// found set and not logged again.
func race(d *disk, n int, prefix string) *racers {
	r := &racers{stop: make(chan struct{})}
	for w := range n {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			var sc store.Scratch
			for i := 0; ; i++ {
				select {
				case <-r.stop:
					return
				default:
				}
				ks := keys(fmt.Sprintf("%s-w%d-%d", prefix, w, i), 20)
				d.s.AddUnacked(ks[:10], make([]byte, 2), &sc)
				_, wait, err := d.s.Add(ks, make([]byte, 3), &sc)
				if err == nil && wait.Wait(ctx) == nil {
					r.mu.Lock()
					r.kept = append(r.kept, ks...)
					r.mu.Unlock()
				}
				r.adds.Add(1)
			}
		}()
	}
	return r
}

// progress waits until the writers have added some more, whatever the
// disk does.
func (r *racers) progress(t *testing.T) {
	target := r.adds.Load() + 20
	for deadline := time.Now().Add(10 * time.Second); r.adds.Load() < target; {
		require.True(t, time.Now().Before(deadline), "the writers stopped")
		runtime.Gosched()
	}
}

// halt stops the writers and returns the keys they were told were kept.
func (r *racers) halt() [][]byte {
	close(r.stop)
	r.wg.Wait()
	return r.kept
}

// Writers race a disk that fills and empties, the retries, and a crash at
// a random step: every add whose acknowledgement succeeded is there after
// the restart. The keys found set by acknowledged adds are kept only if
// what the log dropped meanwhile is checkpointed before adds to keep are
// taken again.
func TestAcknowledgedAddsSurviveFaults(t *testing.T) {
	for seed := range uint64(8) {
		rng := rand.New(rand.NewPCG(seed, 1))
		d := newDisk(t)
		r := race(d, 3, fmt.Sprint("s", seed))
		for range 3 {
			r.progress(t)
			d.fs.Inject(faultfs.Fault{Ops: faultfs.Full, Room: rng.Int64N(4000)})
			r.progress(t)
			d.s.Retry()
			d.fs.Heal()
			d.s.Retry()
		}
		r.progress(t)
		d.fs.Inject(faultfs.Fault{Ops: faultfs.Full, Room: rng.Int64N(4000)})
		r.progress(t)
		d.fs.Heal()
		d.fs.CrashAfter(rng.IntN(30))
		for !d.fs.Crashed() {
			d.s.Retry()
			r.progress(t)
		}
		kept := r.halt()
		d.crash()
		require.Zero(t, d.missing(kept), "seed %d: acknowledged adds lost", seed)
		require.NoError(t, d.s.Close())
	}
}

// The windows inside a retry, each opened at a chosen step with a hook.

// isCheckpointStart reports whether a call opens a checkpoint being
// written: the rotation is done, the rows are about to be copied.
func isCheckpointStart(name, path string) bool {
	return name == "open" && strings.Contains(filepath.Base(path), ".tmp-ckpt-")
}

// No add is acknowledged before the checkpoint that ends a failure is on
// disk: keys added unacknowledged while the log dropped their records are
// found set by a later acknowledged add, which logs nothing, so only that
// checkpoint keeps them.
func TestNoAcknowledgementBeforeTheCheckpoint(t *testing.T) {
	d := newDisk(t)
	require.NoError(t, d.ack(keys("before", 100)))
	d.fill()
	dropped := keys("dropped", 100)
	d.unacked(dropped)
	d.fs.Heal()
	var ackErr error
	d.fs.SetHook(func(name, path string) error {
		if isCheckpointStart(name, path) {
			d.fs.SetHook(nil)
			ackErr = d.ack(dropped)
			d.fs.Crash() // before the checkpoint is on disk
		}
		return nil
	})
	require.ErrorIs(t, d.s.Retry(), faultfs.ErrCrashed)
	require.ErrorIs(t, ackErr, store.ErrUnwritable, "refused until the checkpoint is on disk")
	d.crash()
	require.NoError(t, d.s.Close())
}

// A new segment that fails before the checkpoint is done does not end
// the failure: what it dropped came after the checkpoint's mark.
func TestRetryNeedsTheNewSegmentWhole(t *testing.T) {
	d := newDisk(t)
	require.NoError(t, d.ack(keys("before", 100)))
	d.fill()
	d.fs.Heal()
	seg2 := filepath.Join(d.s.Dir(), "log-0000000000000002.log")
	more := keys("more", 100)
	wrote := make(chan struct{})
	d.fs.SetHook(func(name, path string) error {
		switch {
		case isCheckpointStart(name, path):
			d.unacked(more) // after the mark: for the new segment
			<-wrote
		case name == "write" && path == seg2:
			d.fs.SetHook(nil)
			close(wrote)
			return syscall.EIO
		}
		return nil
	})
	require.ErrorIs(t, d.s.Retry(), syscall.EIO, "the new segment failed: still unwritable")
	require.ErrorIs(t, d.ack(more), store.ErrUnwritable)
	require.NoError(t, d.s.Retry())
	require.NoError(t, d.ack(more))
	d.crash()
	defer d.s.Close()
	assert.Zero(t, d.missing(more))
}

// A Wait asked while a retry is under way does not succeed for records
// the log dropped, however far the new segment is synced: only the
// checkpoint holds them, and it is not on disk yet.
func TestWaitDuringRetry(t *testing.T) {
	d := newDisk(t)
	before := keys("before", 100)
	require.NoError(t, d.ack(before))
	_, tornWait := d.fill()
	d.fs.Heal()
	seg2 := filepath.Join(d.s.Dir(), "log-0000000000000002.log")
	writes := make(chan struct{}, 2)
	var early error
	d.fs.SetHook(func(name, path string) error {
		switch {
		case isCheckpointStart(name, path):
			d.unacked(keys("one", 10))
			<-writes
			d.unacked(keys("two", 10)) // its write begins once the first is written and synced
			<-writes
			early = tornWait.Wait(ctx)
			d.fs.SetHook(nil)
			d.fs.Crash()
		case name == "write" && path == seg2:
			writes <- struct{}{}
		}
		return nil
	})
	require.ErrorIs(t, d.s.Retry(), faultfs.ErrCrashed)
	require.ErrorIs(t, early, store.ErrUnwritable)
	d.crash()
	defer d.s.Close()
	assert.Zero(t, d.missing(before))
}
