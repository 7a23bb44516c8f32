package registry

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/store"
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

// TestWindowForgets: a key answers true for the window and its slack
// (up to W+2Δ), then false once its slice falls out, on the clock alone
// and once DropDue has dropped the slice; the memory follows the slices.
func TestWindowForgets(t *testing.T) {
	clk := &clock{t: time.UnixMilli(1_800_000_000_000)}
	cfg := testConfig()
	cfg.Now = clk.Now
	r := open(t, cfg)
	f := create(t, r, "recent", windowed(1000, 0.01, 10*time.Second, 10))
	def := f.Version().Def
	require.True(t, def.Windowed())
	assert.Equal(t, time.Second, def.SliceLength())
	assert.Empty(t, f.Segments(), "no slice before the first add")
	assert.Equal(t, uint64(1000), f.Capacity(), "its capacity is per window")

	add(t, f, "old")
	require.Len(t, f.Segments(), 1)
	slice := f.Segments()[0]
	assert.Equal(t, def.SliceAt(clk.Now()), slice.ID())
	assert.Equal(t, slice.Rows().Fingerprint(), def.FP, "every slice has the definition's fingerprint")
	used, _ := r.Memory()
	for s := range 11 {
		clk.Add(time.Second)
		add(t, f, fmt.Sprint("k", s))
		require.NoError(t, r.Apply(r.DropDue()).Err)
		assert.True(t, f.Has([]byte("old")), "%d s after, within W+2Δ", s+1)
	}
	assert.Len(t, f.Segments(), 12, "L+2 slices kept")
	after, _ := r.Memory()
	assert.Equal(t, used+11*def.FP.SizeBytes(), after)

	clk.Add(time.Second) // 12 s after its slice began: out of every window
	assert.False(t, f.Has([]byte("old")), "out of the window by the clock, before the slice is dropped")
	assert.Len(t, f.Segments(), 12)
	require.NoError(t, r.Apply(r.DropDue()).Err)
	assert.Len(t, f.Segments(), 11, "dropped")
	assert.Equal(t, slice.ID()+1, f.Segments()[0].ID())
	gone, _ := r.Memory()
	assert.Equal(t, after-def.FP.SizeBytes(), gone, "its memory given back")
	assert.True(t, f.Has([]byte("k0")))

	clk.Add(time.Hour) // away longer than the window
	require.NoError(t, r.Apply(r.DropDue()).Err)
	assert.Empty(t, f.Segments())
	assert.False(t, f.Has([]byte("k10")))
	empty, _ := r.Memory()
	assert.Equal(t, used-def.FP.SizeBytes(), empty, "nothing but the default's")
}

// TestWindowRows: rows a member sent for a slice the window keeps open it
// here; rows of a slice out of the window, or of another fingerprint, do
// not.
func TestWindowRows(t *testing.T) {
	clk := &clock{t: time.UnixMilli(1_800_000_000_000)}
	cfg := testConfig()
	cfg.Now = clk.Now
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
	clk := &clock{t: time.UnixMilli(1_800_000_000_000)}
	cfg := testConfig()
	cfg.Now = clk.Now
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
	clk := &clock{t: time.UnixMilli(1_800_000_000_000)}
	cfg := testConfig()
	cfg.Now = clk.Now
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
