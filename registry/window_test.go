package registry

import (
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/store"
	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func windowed(capacity uint64, fp float64, window time.Duration, slices int) Sizing {
	return Sizing{Layout: filter.Blocked, Capacity: capacity, FPRate: fp, Window: window, Slices: slices}
}

// clock is a settable clock for a registry's Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// clocked is testConfig on a clock of the test's, at 2027-01-15.
func clocked() (Config, *clock) {
	clk := &clock{t: time.UnixMilli(1_800_000_000_000)}
	cfg := testConfig()
	cfg.Now = clk.Now
	return cfg, clk
}

// TestWindowForgets: a key answers true for the window and its slack
// (up to W+2Δ), then false once its slice falls out, on the clock alone
// and once DropDue has dropped the slice; the filter's bytes follow the
// slices, within the budget its window took of --max-memory as it opened.
func TestWindowForgets(t *testing.T) {
	cfg, clk := clocked()
	r := open(t, cfg)
	before, _ := r.Memory()
	f := create(t, r, "recent", windowed(1000, 0.01, 10*time.Second, 10))
	def := f.Version().Def
	require.True(t, def.Windowed())
	used, _ := r.Memory()
	assert.Equal(t, before+def.Bytes(), used, "the window's whole budget, taken as it opens")
	assert.Equal(t, 13*def.FP.SizeBytes(), def.Bytes(), "L+3 slices")
	assert.Equal(t, time.Second, def.SliceLength())
	assert.Empty(t, f.Segments(), "no slice before the first add")
	assert.Equal(t, uint64(1000), f.Capacity(), "its capacity is per window")

	add(t, f, "old")
	require.Len(t, f.Segments(), 1)
	slice := f.Segments()[0]
	assert.Equal(t, def.SliceAt(clk.Now()), slice.ID())
	assert.Equal(t, slice.Rows().Fingerprint(), def.FP, "every slice has the definition's fingerprint")
	assert.Equal(t, def.FP.SizeBytes(), f.Bytes())
	for s := range 11 {
		clk.Add(time.Second)
		add(t, f, fmt.Sprint("k", s))
		require.NoError(t, r.Apply(r.DropDue()).Err)
		assert.True(t, f.Has([]byte("old")), "%d s after, within W+2Δ", s+1)
	}
	assert.Len(t, f.Segments(), 12, "L+2 slices kept")
	assert.Equal(t, 12*def.FP.SizeBytes(), f.Bytes())

	clk.Add(time.Second) // 12 s after its slice began: out of every window
	assert.False(t, f.Has([]byte("old")), "out of the window by the clock, before the slice is dropped")
	assert.Len(t, f.Segments(), 12)
	require.NoError(t, r.Apply(r.DropDue()).Err)
	assert.Len(t, f.Segments(), 11, "dropped")
	assert.Equal(t, slice.ID()+1, f.Segments()[0].ID())
	assert.Equal(t, 11*def.FP.SizeBytes(), f.Bytes(), "its bytes given back")
	assert.True(t, f.Has([]byte("k0")))

	clk.Add(time.Hour) // away longer than the window
	require.NoError(t, r.Apply(r.DropDue()).Err)
	assert.Empty(t, f.Segments())
	assert.False(t, f.Has([]byte("k10")))
	assert.Zero(t, f.Bytes())
	still, _ := r.Memory()
	assert.Equal(t, used, still, "the budget stays while the filter lives")
	p, err := r.Drop("recent")
	require.NoError(t, err)
	require.NoError(t, r.Apply(p).Err)
	after, _ := r.Memory()
	assert.Equal(t, before, after, "given back with the filter")
}

// TestWindowRows: rows a member sent for a slice the window keeps open it
// here; rows of a slice out of the window, or of another fingerprint, do
// not.
func TestWindowRows(t *testing.T) {
	cfg, clk := clocked()
	r := open(t, cfg)
	f := create(t, r, "recent", windowed(1000, 0.01, 10*time.Second, 10))
	def := f.Version().Def
	cur := def.SliceAt(clk.Now())
	vs := r.Lookup([]byte("recent"))

	for _, id := range []uint64{cur - 11, cur, cur + 1} {
		s, err := vs.OpenStage(id, def.FP)
		require.NoError(t, err, "slice %d", id)
		assert.Equal(t, id, s.ID())
	}
	for _, id := range []uint64{cur - 12, cur + 2, 0} {
		_, err := vs.OpenStage(id, def.FP)
		assert.ErrorIs(t, err, ErrNoStage, "slice %d", id)
	}
	other := def.FP
	other.Seed++
	_, err := vs.OpenStage(cur-1, other)
	assert.ErrorIs(t, err, ErrNoStage)
	ids := []uint64{}
	for _, s := range f.Segments() {
		ids = append(ids, s.ID())
	}
	assert.Equal(t, []uint64{cur - 11, cur, cur + 1}, ids, "in order")
	add(t, f, "k")
	assert.Len(t, f.Segments(), 3, "adds go to the slice the clock reads")
}

// TestWindowClock: a node whose clock is over half a slice from the
// cluster's refuses windowed adds, saying why; other filters take them.
func TestWindowClock(t *testing.T) {
	r := open(t, testConfig())
	f := create(t, r, "recent", windowed(1000, 0.01, 10*time.Second, 10))
	plain := create(t, r, "plain", blocked(1000, 0.01))
	r.SetClockOffset(-500 * time.Millisecond)
	add(t, f, "at the bound")
	r.SetClockOffset(501 * time.Millisecond)
	_, _, err := f.Add([][]byte{[]byte("k")}, make([]byte, 1), &store.Scratch{})
	require.ErrorIs(t, err, ErrClock)
	assert.Contains(t, err.Error(), "501ms off")
	add(t, plain, "k")
	r.SetClockOffset(0)
	add(t, f, "k")
}

// TestWindowKeptWhileTheClockIsOff: a node whose clock stepped an hour
// ahead, and knows it (membership measured it), keeps its slices rather
// than dropping the window by its clock; once its clock is back, nothing
// was lost.
func TestWindowKeptWhileTheClockIsOff(t *testing.T) {
	cfg, clk := clocked()
	r := open(t, cfg)
	f := create(t, r, "w", windowed(1000, 0.01, 10*time.Second, 10))
	add(t, f, "k")
	clk.Add(time.Hour)
	r.SetClockOffset(time.Hour)
	require.NoError(t, r.Apply(r.DropDue()).Err)
	assert.Len(t, f.Segments(), 1, "kept while the clock is off")
	clk.Add(-time.Hour)
	r.SetClockOffset(0)
	require.NoError(t, r.Apply(r.DropDue()).Err)
	assert.True(t, f.Has([]byte("k")), "back in time: nothing lost")
	clk.Add(time.Hour)
	require.NoError(t, r.Apply(r.DropDue()).Err)
	assert.Empty(t, f.Segments(), "a clock in step: an hour on, dropped")
}

// TestWindowSizing: a window's sizing is checked, its slices sized for
// their share, and its memory counted whole against --max-memory and
// --max-filter-bytes when it is made.
func TestWindowSizing(t *testing.T) {
	cfg := testConfig()
	r := open(t, cfg)
	for _, s := range []Sizing{
		windowed(1000, 0.01, 50*time.Millisecond, 1),
		windowed(1000, 0.01, time.Second, 20),
		windowed(1000, 0.01, -time.Second, 0),
		windowed(1000, 0.01, 0, 5),
		{Layout: filter.Blocked, Capacity: 1000, FPRate: 0.01, Window: time.Hour, Expansion: 2},
		{Layout: filter.Classic, Window: time.Hour},
	} {
		_, err := r.Create("w", s)
		assert.Error(t, err, "%+v", s)
	}
	f := create(t, r, "w", windowed(100_000, 0.01, 10*time.Second, 0))
	d := f.Version().Def
	assert.Equal(t, uint16(gossip.DefaultSlices), d.Slices)
	assert.Equal(t, uint64(10_000), d.SliceCapacity())
	assert.InDelta(t, 0.01/12, d.SliceRate(), 1e-12)
	assert.LessOrEqual(t, d.Bytes(), uint64(1.2*1.3*100_000*2), "within the issue's bound: 1.2 × 1.3·n·(−log10 p)")

	cfg.MaxMemory = int64(d.Bytes())
	small := open(t, cfg)
	_, err := small.Create("w", windowed(100_000, 0.01, 10*time.Second, 0))
	assert.ErrorContains(t, err, "max-memory", "the default's bytes and the whole window's do not fit")
	cfg.MaxMemory, cfg.MaxFilterBytes = 0, d.Bytes()-1
	_, err = open(t, cfg).Create("w", windowed(100_000, 0.01, 10*time.Second, 0))
	assert.ErrorIs(t, err, filter.ErrTooLarge)
}

// TestWindowRestart: a restart opens the slices the window still keeps
// from their folders, with their keys, and removes the folders of the
// others; away longer than the window, the filter starts empty.
func TestWindowRestart(t *testing.T) {
	path := t.TempDir()
	cfg, clk := clocked()
	reopen := reopener(t, path, cfg)
	r := reopen()
	r.Start()
	f := create(t, r, "recent", windowed(1000, 0.01, 10*time.Second, 10))
	for s := range 5 {
		add(t, f, fmt.Sprint("k", s))
		clk.Add(time.Second)
	}
	folders := func() []string {
		entries, err := os.ReadDir(filepath.Join(path, "filters"))
		require.NoError(t, err)
		var out []string
		for _, e := range entries {
			out = append(out, e.Name())
		}
		return out
	}
	assert.Len(t, folders(), 1+5, "the default's and a folder per slice")
	require.NoError(t, r.Close())

	clk.Add(8 * time.Second) // k0 and k1 fall out of the window meanwhile
	r = reopen()
	f = r.Lookup([]byte("recent")).Winner()
	require.NotNil(t, f)
	assert.Len(t, f.Segments(), 3)
	for s := range 5 {
		assert.Equal(t, s >= 2, f.Has([]byte(fmt.Sprint("k", s))), "k%d", s)
	}
	assert.Len(t, folders(), 1+3, "folders out of the window removed")
	require.NoError(t, r.Close())

	clk.Add(time.Hour)
	r = reopen()
	defer r.Close()
	f = r.Lookup([]byte("recent")).Winner()
	assert.Empty(t, f.Segments())
	assert.Len(t, folders(), 1)
	add(t, f, "new")
	assert.True(t, f.Has([]byte("new")))
}

// TestWindowDroppedWhileAdding: slices opening and dropping while the
// filter is dropped and adds run: no panic, no add to a closed store, the
// memory given back whole.
func TestWindowDroppedWhileAdding(t *testing.T) {
	cfg, clk := clocked()
	cfg.Dir = nil
	reopen := reopener(t, t.TempDir(), cfg)
	r := reopen()
	defer r.Close()
	r.Start()
	base, _ := r.Memory()
	for round := range 5 {
		f := create(t, r, "w", windowed(1000, 0.01, time.Second, 5))
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := range 200 {
					_, _, err := f.Add([][]byte{fmt.Appendf(nil, "%d-%d-%d", round, g, i)}, make([]byte, 1), &store.Scratch{})
					if err != nil {
						require.ErrorIs(t, err, ErrDropped)
						return
					}
				}
			})
		}
		wg.Go(func() {
			for range 50 {
				clk.Add(100 * time.Millisecond)
				r.Apply(r.DropDue())
			}
		})
		p, err := r.Drop("w")
		require.NoError(t, err)
		require.NoError(t, r.Apply(p).Err)
		wg.Wait()
		used, _ := r.Memory()
		assert.Equal(t, base, used, "round %d", round)
	}
}

// TestWindowAlarms: a windowed filter alarms when the keys of its last
// window pass its capacity — not when its slices together hold more (they
// hold the window and two slices more) — and logs it once per doubling.
func TestWindowAlarms(t *testing.T) {
	clk := &clock{t: time.UnixMilli(1_800_000_000_000)}
	var logs strings.Builder
	cfg := testConfig()
	cfg.Now = clk.Now
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r := open(t, cfg)
	f := create(t, r, "recent", windowed(1000, 0.01, 10*time.Second, 10))
	feed := func(perSlice, slices int) {
		for s := range slices {
			keys := make([]string, perSlice)
			for i := range keys {
				keys[i] = fmt.Sprintf("s%d-%d-%d", clk.Now().UnixMilli(), s, i)
			}
			add(t, f, keys...)
			clk.Add(time.Second)
			r.Apply(r.DropDue())
		}
	}
	feed(95, 14) // 1,140 keys in the 12 slices held, 950 in the last window
	r.RefreshStats()
	assert.Equal(t, Alarms{}, f.Stats().Alarms)
	assert.InDelta(t, 855, f.Stats().EstimatedKeys, 60, "the keys of the last window (the one the clock reads is empty)")
	assert.Empty(t, logs.String())

	feed(300, 5) // a burst: 1,500 in the last 5 s
	r.RefreshStats()
	assert.True(t, f.Stats().Alarms.OverCapacity)
	assert.Contains(t, logs.String(), "windowed filter's last window holds more keys than it was sized for")
	assert.Contains(t, logs.String(), "filter=recent")

	feed(50, 14) // back under
	r.RefreshStats()
	assert.False(t, f.Stats().Alarms.OverCapacity)
}

// TestWindowClockStepBack: after the clock steps back an hour, the slices
// opened "in the future" are out of the window too: dropped, so that adds
// go on within L+3 slices and --max-filter-bytes, as after a restart.
func TestWindowClockStepBack(t *testing.T) {
	cfg, clk := clocked()
	d, err := windowed(100_000, 0.01, 10*time.Second, 10).def("w", 1, 0)
	require.NoError(t, err)
	cfg.MaxFilterBytes = d.Bytes()
	r := open(t, cfg)
	f := create(t, r, "w", windowed(100_000, 0.01, 10*time.Second, 10))
	for s := range 12 {
		add(t, f, fmt.Sprint("k", s))
		clk.Add(time.Second)
		require.NoError(t, r.Apply(r.DropDue()).Err)
	}
	clk.Add(-time.Hour)
	for s := range 12 {
		_, _, err := f.Add([][]byte{fmt.Appendf(nil, "late%d", s)}, make([]byte, 1), &store.Scratch{})
		require.NoError(t, err, "an add %d s after the clock stepped back", s)
		assert.LessOrEqual(t, f.Bytes(), d.Bytes(), "L+3 slices at most")
		clk.Add(time.Second)
		if s%3 == 0 {
			require.NoError(t, r.Apply(r.DropDue()).Err)
		}
	}
	assert.False(t, f.Has([]byte("k11")), "what was added an hour ahead is gone")
	assert.True(t, f.Has([]byte("late11")))
}

// TestWindowMemoryBudget: a windowed filter takes its whole window's
// memory (L+3 slices) of --max-memory as it opens, and gives it back with
// the filter: a second window that does not fit is refused at create, not
// left to refuse adds later; restarts and slices opened for members' rows
// leave the count as it was.
func TestWindowMemoryBudget(t *testing.T) {
	path := t.TempDir()
	cfg, clk := clocked()
	d, err := windowed(1000, 0.01, 10*time.Second, 10).def("w", 1, 0)
	require.NoError(t, err)
	base, _ := open(t, cfg).Memory()
	cfg.MaxMemory = int64(base + d.Bytes() + d.Bytes()/2)
	reopen := reopener(t, path, cfg)
	r := reopen()
	r.Start()
	f := create(t, r, "w", windowed(1000, 0.01, 10*time.Second, 10))
	_, err = r.Create("second", windowed(1000, 0.01, 10*time.Second, 10))
	require.ErrorContains(t, err, "--max-memory")
	for s := range 6 {
		add(t, f, fmt.Sprint("k", s))
		clk.Add(time.Second)
	}
	used, _ := r.Memory()
	assert.Equal(t, base+d.Bytes(), used)
	require.NoError(t, r.Close())

	r = reopen()
	defer r.Close()
	r.Start()
	after, _ := r.Memory()
	assert.Equal(t, used, after, "restarted")
	f = r.Lookup([]byte("w")).Winner()
	assert.Equal(t, 6*f.Version().Def.FP.SizeBytes(), f.Bytes())
	lo, hi := d.Kept(d.SliceAt(clk.Now()))
	for id := lo; id <= hi; id++ { // every slice of the window, from a member's rows
		_, err := r.Lookup([]byte("w")).OpenStage(id, f.Version().Def.FP)
		require.NoError(t, err)
	}
	assert.Equal(t, d.Bytes(), f.Bytes(), "L+3 slices: the whole budget")
	full, _ := r.Memory()
	assert.Equal(t, used, full)
	p, err := r.Drop("w")
	require.NoError(t, err)
	require.NoError(t, r.Apply(p).Err)
	gone, _ := r.Memory()
	assert.Equal(t, base, gone)
}

// TestWindowAddsVersusJumps: adds, members' rows and DropDue at once
// while the clock jumps past the window again and again: an add whose
// slice is dropped under it goes to the next one, never to a closed
// store; the slices stay within L+3.
func TestWindowAddsVersusJumps(t *testing.T) {
	cfg, clk := clocked()
	r := reopener(t, t.TempDir(), cfg)()
	defer r.Close()
	r.Start()
	f := create(t, r, "w", windowed(100_000, 0.01, time.Second, 10))
	def := f.Version().Def
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for g := range 4 {
		wg.Go(func() {
			sc := &store.Scratch{}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				keys := make([][]byte, 64)
				for j := range keys {
					keys[j] = fmt.Appendf(nil, "%d-%d-%d", g, i, j)
				}
				if _, _, err := f.Add(keys, make([]byte, 8), sc); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			r.Lookup([]byte("w")).SegmentOrStage(def.SliceAt(clk.Now())+1, def.FP)
		}
	})
	for range 500 {
		clk.Add(2 * time.Second)
		r.Apply(r.DropDue())
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		if !strings.Contains(err.Error(), "is being dropped") { // a slice dropped and wanted again at once: said so
			t.Errorf("add: %v", err)
		}
	}
	assert.LessOrEqual(t, len(f.Segments()), int(def.Slices)+3)
}

// TestRequestedWindowOverflow: a create request's window past what a
// duration holds is refused, not wrapped to a small one.
func TestRequestedWindowOverflow(t *testing.T) {
	for _, ms := range []uint64{1<<58 + 10_000, uint64(gossip.MaxWindow/time.Millisecond) + 1, math.MaxUint64} {
		q := wire.FilterRequest{Op: wire.FilterOpCreate, Name: []byte("w"), Layout: filter.Blocked, Capacity: 1000, FPRate: 0.01,
			Window: ms, Slices: 10}
		assert.ErrorIs(t, Requested(q, 0).Check(), ErrWindow, "%d ms", ms)
	}
}

// trapClock is a clock whose next reading, once armed, is held back: the
// caller reads the time as it was when it called, and goes on only once
// the test lets it — as a goroutine descheduled (or waiting on growMu
// behind an openSlice doing file I/O) right after reading the clock.
type trapClock struct {
	clock
	armed   atomic.Bool
	fired   chan struct{}
	release chan struct{}
}

func (c *trapClock) Now() time.Time {
	t := c.clock.Now()
	if c.armed.CompareAndSwap(true, false) {
		close(c.fired)
		<-c.release
	}
	return t
}

// dropOld reads the window under growMu: a slice opened for a later
// reading of the clock than its own — the current one, holding
// acknowledged adds — is not taken for one ahead of the window.
func TestWindowDropKeepsTheCurrentSlice(t *testing.T) {
	clk := &trapClock{clock: clock{t: time.UnixMilli(1_800_000_000_000)}, fired: make(chan struct{}), release: make(chan struct{})}
	cfg := testConfig()
	cfg.Now = clk.Now
	r := reopener(t, t.TempDir(), cfg)()
	defer r.Close()
	r.Start()
	f := create(t, r, "w", windowed(1000, 0.01, 10*time.Second, 10))
	add(t, f, "before")

	clk.armed.Store(true)
	done := make(chan struct{})
	go func() { f.dropOld(); close(done) }() // DropDue's, from housekeep
	<-clk.fired                              // it read the clock; not yet growMu
	clk.Add(2 * time.Second)                 // two slices later
	added := make(chan error, 1)
	go func() { added <- addAcked(f, "acked") }() // to the slice the clock reads now
	select {
	case err := <-added: // acknowledged before dropOld went on
		require.NoError(t, err)
		require.True(t, f.Has([]byte("acked")))
		close(clk.release)
	case <-time.After(200 * time.Millisecond): // the add waits for dropOld (growMu): fine
		close(clk.release)
		require.NoError(t, <-added)
	}
	<-done

	assert.True(t, f.Has([]byte("acked")), "an acknowledged key, added a moment ago, is forgotten")
	assert.True(t, f.Has([]byte("before")))
}

// A filter dropped while DropDue drops its slices: each slice is closed
// and removed once, by the drop or by dropOld, never both.
func TestWindowDropVersusDropOld(t *testing.T) {
	for round := range 200 {
		cfg, clk := clocked()
		r := reopener(t, t.TempDir(), cfg)()
		r.Start()
		f := create(t, r, "w", windowed(1000, 0.01, time.Second, 10))
		for i := range 5 {
			add(t, f, fmt.Sprint("k", i))
			clk.Add(100 * time.Millisecond)
		}
		clk.Add(time.Hour) // every slice out of the window
		p, err := r.Drop("w")
		require.NoError(t, err)
		var wg sync.WaitGroup
		start := make(chan struct{})
		wg.Go(func() { <-start; f.dropOld() })
		var res Result
		wg.Go(func() { <-start; res = r.Apply(p) })
		close(start)
		wg.Wait()
		assert.NoError(t, res.Err, "round %d", round)
		require.NoError(t, r.Close(), "round %d", round)
	}
}

// Registry.Close while DropDue drops a windowed filter's last slices:
// Close waits for the drop, closes the data directory whole, and lets its
// LOCK go.
func TestWindowCloseVersusDropOld(t *testing.T) {
	path := t.TempDir()
	cfg, clk := clocked()
	reopen := reopener(t, path, cfg)
	r := reopen()
	r.Start()
	f := create(t, r, "w", windowed(1000, 0.01, 10*time.Second, 10))
	add(t, f, "k")
	clk.Add(time.Hour)

	f.mu.RLock() // an add in flight in the filter: dropOld waits at its barrier, its slices out of the list
	done := make(chan struct{})
	go func() { f.dropOld(); close(done) }()
	require.Eventually(t, func() bool { return len(f.Segments()) == 0 }, 5*time.Second, time.Millisecond)
	closed := make(chan error, 1)
	go func() { closed <- r.Close() }() // the node shutting down: it waits for the drop, which waits for the add
	f.mu.RUnlock()
	<-done
	assert.NoError(t, <-closed)

	d, err := store.OpenDir(path)
	if assert.NoError(t, err, "the data directory's lock is let go by Close") {
		d.Close()
	}
}

// A member's rows of the next slice (its clock a little ahead) right
// after this node's clock turned a slice, before DropDue ran: the slice
// that left the window goes first, and the rows are taken.
func TestWindowRowsAtASliceTurn(t *testing.T) {
	cfg, clk := clocked()
	r := open(t, cfg)
	f := create(t, r, "w", windowed(1000, 0.01, 10*time.Second, 10))
	def := f.Version().Def
	vs := r.Lookup([]byte("w"))
	lo, hi := def.Kept(def.SliceAt(clk.Now()))
	for id := lo; id <= hi; id++ { // every slice of the window, from rows
		_, err := vs.OpenStage(id, def.FP)
		require.NoError(t, err)
	}
	clk.Add(time.Second) // the next slice: lo left the window
	_, err := vs.OpenStage(hi+1, def.FP)
	assert.NoError(t, err, "rows of a slice the window keeps")
}
