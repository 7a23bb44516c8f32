package registry

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDeadlineDropsTheFilter: a filter is dropped at its deadline as a
// drop would drop it, and not before; a node that was down at the
// deadline does not open it again, and its folder goes.
func TestDeadlineDropsTheFilter(t *testing.T) {
	path := t.TempDir()
	now := time.UnixMilli(1_800_000_000_000)
	cfg := testConfig()
	cfg.Now = func() time.Time { return now }
	reopen := reopener(t, path, cfg)
	r := reopen()
	r.Start()
	add(t, create(t, r, "soon", blocked(5000, 0.01)), "k1")
	add(t, create(t, r, "later", blocked(5000, 0.01)), "k1")
	add(t, create(t, r, "kept", blocked(5000, 0.01)), "k1")

	_, err := r.SetDeadline(DefaultName, now.Add(time.Second), nil)
	assert.ErrorIs(t, err, ErrDefault)
	_, err = r.SetDeadline("nope", now.Add(time.Second), nil)
	assert.Error(t, err)
	for name, d := range map[string]time.Duration{"soon": time.Second, "later": time.Minute} {
		p, err := r.SetDeadline(name, now.Add(d), nil)
		require.NoError(t, err)
		require.NoError(t, r.Apply(p).Err)
		require.Len(t, p.Broadcast, 1, "the deadline goes to the members")
	}
	dl, ok := r.Deadline("soon")
	require.True(t, ok)
	assert.True(t, dl.Equal(now.Add(time.Second)))

	now = now.Add(999 * time.Millisecond)
	require.NoError(t, r.Apply(r.DropDue()).Err)
	assert.Equal(t, []string{"kept", "later", "soon"}, r.Names(), "not before its deadline")
	now = now.Add(time.Millisecond)
	p := r.DropDue()
	require.NoError(t, r.Apply(p).Err)
	assert.Equal(t, []string{"kept", "later"}, r.Names())
	assert.Len(t, p.Broadcast, 1)
	_, ok = r.Deadline("soon")
	assert.False(t, ok)
	later := r.Lookup([]byte("later")).Winner()
	require.NoError(t, r.Close())

	// Down past the next deadline: it is not opened again.
	now = now.Add(2 * time.Minute)
	r = reopen()
	defer r.Close()
	assert.Equal(t, []string{"kept"}, r.Names())
	assert.True(t, r.Lookup([]byte("kept")).Winner().Has([]byte("k1")))
	_, err = os.Stat(filepath.Join(path, "filters", store.FolderName(later.folder)))
	assert.ErrorIs(t, err, os.ErrNotExist, "its folder removed")
	e := r.Entry("later")
	require.Len(t, e.Drops, 1)
	assert.Equal(t, now.Add(-2*time.Minute+time.Minute-time.Second).UnixMilli(), e.Drops[0].At, "dated at its deadline")

	// A deadline come is gone: not told, not set again, though the
	// housekeeping has not dropped the filter yet.
	create(t, r, "due", blocked(100, 0.01))
	p, err = r.SetDeadline("due", now.Add(time.Millisecond), nil)
	require.NoError(t, err)
	require.NoError(t, r.Apply(p).Err)
	now = now.Add(2 * time.Millisecond)
	_, ok = r.Deadline("due")
	assert.False(t, ok, "due: no filter")
	p, err = r.SetDeadline("due", time.Time{}, nil)
	assert.ErrorIs(t, err, gossip.ErrNotFound, "PERSIST comes too late")
	require.NoError(t, r.Apply(p).Err)
	assert.Empty(t, r.Lookup([]byte("due")), "and it is dropped")

	// A condition says no: nothing set.
	_, err = r.SetDeadline("kept", now.Add(time.Hour), func(current time.Time) bool { return !current.IsZero() })
	assert.ErrorIs(t, err, ErrNotSet)
	dl, ok = r.Deadline("kept")
	assert.True(t, ok && dl.IsZero())

	// A deadline already past drops it at once.
	p, err = r.SetDeadline("kept", now.Add(-time.Hour), nil)
	require.NoError(t, err)
	require.NoError(t, r.Apply(p).Err)
	assert.Empty(t, r.Names())
}
