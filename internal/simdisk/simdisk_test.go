package simdisk_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/rmbd/rmbd/internal/simdisk"
	"github.com/rmbd/rmbd/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// create makes the file name holding data; sync says whether the data is
// fsynced, dirSync whether the name is.
func create(t *testing.T, fsys store.FS, name, data string, sync, dirSync bool) {
	t.Helper()
	f, err := fsys.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	require.NoError(t, err)
	_, err = f.Write([]byte(data))
	require.NoError(t, err)
	if sync {
		require.NoError(t, f.Sync())
	}
	require.NoError(t, f.Close())
	if dirSync {
		require.NoError(t, fsys.SyncDir(filepath.Dir(name)))
	}
}

// appendTo appends data to name; sync says whether it is fsynced.
func appendTo(t *testing.T, fsys store.FS, name, data string, sync bool) {
	t.Helper()
	f, err := fsys.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.Write([]byte(data))
	require.NoError(t, err)
	if sync {
		require.NoError(t, f.Sync())
	}
	require.NoError(t, f.Close())
}

// read returns the content of name, or an error.
func read(fsys store.FS, name string) (string, error) {
	st, err := fsys.Stat(name)
	if err != nil {
		return "", err
	}
	f, err := fsys.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && len(b) > 0 {
		return "", err
	}
	return string(b), nil
}

// dump renders every directory and file under name, with its content.
func dump(t *testing.T, fsys store.FS, name string) string {
	t.Helper()
	var sb strings.Builder
	ents, err := fsys.ReadDir(name)
	require.NoError(t, err)
	for _, e := range ents {
		p := filepath.Join(name, e.Name())
		if e.IsDir() {
			fmt.Fprintf(&sb, "%s/\n%s", p, dump(t, fsys, p))
			continue
		}
		data, err := read(fsys, p)
		require.NoError(t, err)
		fmt.Fprintf(&sb, "%s %q\n", p, data)
	}
	return sb.String()
}

func TestUnsyncedContentIsLost(t *testing.T) {
	d := simdisk.New(1)
	fsys := d.FS()
	create(t, fsys, "/a", "synced", true, true)
	appendTo(t, fsys, "/a", "+unsynced", false)
	got, err := read(fsys, "/a")
	require.NoError(t, err)
	assert.Equal(t, "synced+unsynced", got, "reads see the live content")

	d.Crash(false)
	got, err = read(d.FS(), "/a")
	require.NoError(t, err)
	assert.Equal(t, "synced", got, "what was not fsynced is gone")

	appendTo(t, d.FS(), "/a", "+more", true)
	d.Crash(false)
	got, err = read(d.FS(), "/a")
	require.NoError(t, err)
	assert.Equal(t, "synced+more", got, "a Sync keeps what was appended")
}

func TestNameNeedsSyncDir(t *testing.T) {
	d := simdisk.New(1)
	fsys := d.FS()
	create(t, fsys, "/kept", "x", true, true)
	create(t, fsys, "/lost", "y", true, false) // content synced, name not
	require.NoError(t, fsys.Mkdir("/dir", 0o755))
	create(t, fsys, "/dir/inside", "z", true, true) // the directory's own name is not durable
	d.Crash(false)

	fsys = d.FS()
	_, err := fsys.Stat("/lost")
	assert.ErrorIs(t, err, fs.ErrNotExist, "a name not dir-synced vanishes")
	_, err = fsys.Stat("/dir")
	assert.ErrorIs(t, err, fs.ErrNotExist, "a directory not dir-synced vanishes with what it held")
	assert.Equal(t, "/kept \"x\"\n", dump(t, fsys, "/"))
}

func TestSyncedNameWithoutSyncedContentIsEmpty(t *testing.T) {
	d := simdisk.New(1)
	create(t, d.FS(), "/a", "never synced", false, true)
	d.Crash(false)
	got, err := read(d.FS(), "/a")
	require.NoError(t, err)
	assert.Empty(t, got, "the name is durable, the content is not")
}

func TestRenameNotDirSyncedReverts(t *testing.T) {
	d := simdisk.New(1)
	fsys := d.FS()
	create(t, fsys, "/old", "data", true, true)
	require.NoError(t, fsys.Rename("/old", "/new"))
	_, err := fsys.Stat("/old")
	require.ErrorIs(t, err, fs.ErrNotExist)
	d.Crash(false)
	assert.Equal(t, "/old \"data\"\n", dump(t, d.FS(), "/"), "the rename reverts")

	fsys = d.FS()
	require.NoError(t, fsys.Rename("/old", "/new"))
	require.NoError(t, fsys.SyncDir("/"))
	d.Crash(false)
	assert.Equal(t, "/new \"data\"\n", dump(t, d.FS(), "/"), "a dir-synced rename stays")
}

func TestReplacingRename(t *testing.T) {
	// The store's way of writing a file: temporary name, fsync, rename
	// over the old one, fsync the directory.
	d := simdisk.New(1)
	fsys := d.FS()
	create(t, fsys, "/f", "v1", true, true)
	create(t, fsys, "/.tmp-f", "v2", true, false)
	require.NoError(t, fsys.Rename("/.tmp-f", "/f"))
	d.Crash(false)
	assert.Equal(t, "/f \"v1\"\n", dump(t, d.FS(), "/"), "without SyncDir the old file is back")

	fsys = d.FS()
	create(t, fsys, "/.tmp-f", "v2", true, false)
	require.NoError(t, fsys.Rename("/.tmp-f", "/f"))
	require.NoError(t, fsys.SyncDir("/"))
	d.Crash(true)
	assert.Equal(t, "/f \"v2\"\n", dump(t, d.FS(), "/"))
}

func TestRemoveNotDirSyncedReverts(t *testing.T) {
	d := simdisk.New(1)
	fsys := d.FS()
	create(t, fsys, "/a", "data", true, true)
	require.NoError(t, fsys.Remove("/a"))
	d.Crash(false)
	assert.Equal(t, "/a \"data\"\n", dump(t, d.FS(), "/"))
}

func TestCrossDirectoryRenameHalfSynced(t *testing.T) {
	d := simdisk.New(1)
	fsys := d.FS()
	require.NoError(t, fsys.Mkdir("/x", 0o755))
	require.NoError(t, fsys.Mkdir("/y", 0o755))
	require.NoError(t, fsys.SyncDir("/"))
	create(t, fsys, "/x/f", "data", true, true)
	require.NoError(t, fsys.Rename("/x/f", "/y/f"))
	require.NoError(t, fsys.SyncDir("/y")) // not /x
	d.Crash(false)
	assert.Equal(t, "/x/\n/x/f \"data\"\n/y/\n/y/f \"data\"\n", dump(t, d.FS(), "/"), "both names survive")
	appendTo(t, d.FS(), "/x/f", "+", true)
	got, err := read(d.FS(), "/y/f")
	require.NoError(t, err)
	assert.Equal(t, "data+", got, "one file under two names")
}

// A directory moved into another of its own entries, with both synced
// and its old parent not, would be its own ancestor: the crash leaves it
// out the second time it reaches it.
func TestCrashBreaksDirectoryCycles(t *testing.T) {
	d := simdisk.New(1)
	fsys := d.FS()
	require.NoError(t, fsys.Mkdir("/a", 0o755))
	require.NoError(t, fsys.Mkdir("/a/b", 0o755))
	require.NoError(t, fsys.SyncDir("/"))
	require.NoError(t, fsys.SyncDir("/a"))
	require.NoError(t, fsys.Rename("/a/b", "/b"))
	require.NoError(t, fsys.Rename("/a", "/b/a"))
	require.NoError(t, fsys.SyncDir("/"))
	require.NoError(t, fsys.SyncDir("/b")) // durable: / → b → a → b
	d.Crash(false)
	assert.Equal(t, "/b/\n/b/a/\n", dump(t, d.FS(), "/"))
}

// tornCase writes a synced header and an unsynced tail, crashes with a
// tear, and returns the header, the tail and what the file kept.
func tornCase(t *testing.T, seed uint64) (head, tail, got string) {
	d := simdisk.New(seed)
	fsys := d.FS()
	rng := rand.New(rand.NewPCG(seed, 9))
	head = strings.Repeat("H", 100+rng.IntN(1000))
	b := make([]byte, 1+rng.IntN(8)) // short: often nothing kept
	if rng.IntN(2) == 0 {
		b = make([]byte, 1+rng.IntN(3000)) // long: sectors to tear
	}
	for i := range b {
		b[i] = byte('a' + rng.IntN(26))
	}
	tail = string(b)
	create(t, fsys, "/log", head, true, true)
	appendTo(t, fsys, "/log", tail, false)
	d.Crash(true)
	got, err := read(d.FS(), "/log")
	require.NoError(t, err)
	return head, tail, got
}

func TestTearKeepsPrefixOfTail(t *testing.T) {
	var none, some, garbled int
	for seed := range uint64(300) {
		head, tail, got := tornCase(t, seed)
		require.True(t, strings.HasPrefix(got, head), "seed %d: the synced content stays", seed)
		k := len(got) - len(head)
		require.LessOrEqual(t, k, len(tail), "seed %d", seed)
		if k == 0 {
			none++
			continue
		}
		some++
		// Bytes differ from the tail only in the last sector reached,
		// and there all of them.
		from := max(len(head), (len(got)-1)/simdisk.SectorSize*simdisk.SectorSize)
		kept, want := got[len(head):], tail[:k]
		split := from - len(head)
		require.Equal(t, want[:split], kept[:split], "seed %d: before the last sector, a prefix of the tail", seed)
		if kept[split:] == want[split:] {
			continue
		}
		garbled++
		for i := split; i < k; i++ {
			require.NotEqual(t, want[i], kept[i], "seed %d: a torn sector is garbled whole, byte %d", seed, len(head)+i)
		}
	}
	t.Logf("of 300 tears: %d kept nothing, %d a prefix, %d of them garbled", none, some, garbled)
	assert.Positive(t, none, "some tears keep none of the tail")
	assert.Positive(t, some, "some keep part of it")
	assert.Positive(t, garbled, "some garble the last sector")
	assert.Less(t, garbled, some, "not all")
}

func TestTearOfRewrittenFile(t *testing.T) {
	seen := map[string]int{}
	for seed := range uint64(50) {
		d := simdisk.New(seed)
		fsys := d.FS()
		create(t, fsys, "/f", "durable", true, true)
		create(t, fsys, "/f", "live", false, false) // O_TRUNC, rewritten, not synced
		d.Crash(seed%2 == 0)
		got, err := read(d.FS(), "/f")
		require.NoError(t, err)
		if seed%2 == 1 {
			require.Equal(t, "durable", got, "without tear: the durable content")
		}
		seen[got]++
	}
	assert.Len(t, seen, 2, "with tear, either the durable or the live content: %v", seen)
	assert.Contains(t, seen, "live")
}

func TestOldViewFailsAfterCrash(t *testing.T) {
	d := simdisk.New(1)
	old := d.FS()
	lk, err := old.Lock("/LOCK")
	require.NoError(t, err)
	_, err = old.Lock("/LOCK")
	require.ErrorIs(t, err, store.ErrLocked, "one holder at a time")
	f, err := old.OpenFile("/f", os.O_RDWR|os.O_CREATE, 0o644)
	require.NoError(t, err)

	d.Crash(false)
	assert.NotSame(t, old, d.FS())
	fsys := d.FS()
	assert.Same(t, fsys, d.FS(), "one view per incarnation")
	_, err = old.Stat("/")
	assert.ErrorIs(t, err, simdisk.ErrCrashed)
	assert.ErrorIs(t, old.Mkdir("/d", 0o755), simdisk.ErrCrashed)
	assert.ErrorIs(t, old.SyncDir("/"), simdisk.ErrCrashed)
	_, err = old.ReadDir("/")
	assert.ErrorIs(t, err, simdisk.ErrCrashed)
	_, err = f.Write([]byte("x"))
	assert.ErrorIs(t, err, simdisk.ErrCrashed, "open files too")
	assert.ErrorIs(t, f.Sync(), simdisk.ErrCrashed)
	_, err = f.ReadAt(make([]byte, 1), 0)
	assert.ErrorIs(t, err, simdisk.ErrCrashed)
	assert.ErrorIs(t, f.Close(), simdisk.ErrCrashed)
	assert.ErrorIs(t, lk.Close(), simdisk.ErrCrashed)

	lk2, err := fsys.Lock("/LOCK")
	require.NoError(t, err, "the crash let go of the lock")
	require.NoError(t, lk2.Close())
	lk3, err := fsys.Lock("/LOCK")
	require.NoError(t, err, "so does Close")
	require.NoError(t, lk3.Close())
	assert.ErrorIs(t, lk3.Close(), fs.ErrClosed)
}

func TestErrors(t *testing.T) {
	d := simdisk.New(1)
	fsys := d.FS()
	_, err := fsys.OpenFile("/missing", os.O_RDONLY, 0)
	assert.ErrorIs(t, err, fs.ErrNotExist)
	assert.True(t, os.IsNotExist(err))
	var pe *fs.PathError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, syscall.ENOENT, pe.Err)
	_, err = fsys.OpenFile("/no/such/dir", os.O_WRONLY|os.O_CREATE, 0o644)
	assert.ErrorIs(t, err, fs.ErrNotExist, "no parent")

	create(t, fsys, "/f", "0123456789", false, false)
	_, err = fsys.OpenFile("/f", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	assert.ErrorIs(t, err, fs.ErrExist)
	assert.True(t, os.IsExist(err))
	_, err = fsys.OpenFile("/f/x", os.O_RDONLY, 0)
	assert.ErrorIs(t, err, syscall.ENOTDIR)

	assert.ErrorIs(t, fsys.Mkdir("/f", 0o755), fs.ErrExist)
	assert.ErrorIs(t, fsys.Mkdir("/", 0o755), fs.ErrExist)
	assert.ErrorIs(t, fsys.Mkdir("/a/b", 0o755), fs.ErrNotExist)
	require.NoError(t, fsys.Mkdir("/a", 0o755))
	_, err = fsys.OpenFile("/a", os.O_RDONLY, 0)
	assert.ErrorIs(t, err, syscall.EISDIR)
	create(t, fsys, "/a/g", "", false, false)
	assert.ErrorIs(t, fsys.Remove("/a"), syscall.ENOTEMPTY)
	assert.ErrorIs(t, fsys.Remove("/nothing"), fs.ErrNotExist)
	assert.ErrorIs(t, fsys.Rename("/nothing", "/x"), fs.ErrNotExist)
	assert.ErrorIs(t, fsys.Rename("/f", "/a"), syscall.EISDIR)
	assert.ErrorIs(t, fsys.Rename("/a", "/a/b"), syscall.EINVAL)
	assert.ErrorIs(t, fsys.SyncDir("/f"), syscall.ENOTDIR)
	require.NoError(t, fsys.Remove("/a/g"))
	require.NoError(t, fsys.Remove("/a"))

	ro, err := fsys.OpenFile("/f", os.O_RDONLY, 0)
	require.NoError(t, err)
	_, err = ro.Write([]byte("x"))
	assert.ErrorIs(t, err, syscall.EBADF, "read-only")
	assert.ErrorIs(t, ro.Truncate(0), syscall.EBADF)
	b := make([]byte, 4)
	n, err := ro.ReadAt(b, 8)
	assert.Equal(t, 2, n)
	assert.ErrorIs(t, err, io.EOF, "short")
	assert.Equal(t, "89", string(b[:n]))
	n, err = ro.ReadAt(b, 100)
	assert.Zero(t, n)
	assert.ErrorIs(t, err, io.EOF)
	n, err = ro.ReadAt(b, 2)
	assert.NoError(t, err)
	assert.Equal(t, "2345", string(b[:n]))
	require.NoError(t, ro.Close())
	_, err = ro.ReadAt(b, 0)
	assert.ErrorIs(t, err, fs.ErrClosed)
	assert.ErrorIs(t, ro.Close(), fs.ErrClosed)

	wo, err := fsys.OpenFile("/f", os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = wo.ReadAt(b, 0)
	assert.ErrorIs(t, err, syscall.EBADF, "write-only")
	require.NoError(t, wo.Close())
}

func TestWritesTruncateAndPaths(t *testing.T) {
	d := simdisk.New(1)
	fsys := d.FS()
	f, err := fsys.OpenFile("rel", os.O_RDWR|os.O_CREATE, 0o600)
	require.NoError(t, err)
	for _, s := range []string{"hello", " ", "world"} {
		_, err := f.Write([]byte(s))
		require.NoError(t, err)
	}
	got, err := read(fsys, "/./x/../rel")
	require.NoError(t, err)
	assert.Equal(t, "hello world", got, "writes go on from the position; relative paths are under the root")

	require.NoError(t, f.Sync())
	require.NoError(t, f.Truncate(4))
	_, err = f.Write([]byte("!")) // at the position, past the end: a gap of zeros
	require.NoError(t, err)
	got, _ = read(fsys, "/rel")
	assert.Equal(t, "hell\x00\x00\x00\x00\x00\x00\x00!", got)
	require.NoError(t, f.Truncate(2))
	require.NoError(t, f.Truncate(5))
	got, _ = read(fsys, "/rel")
	assert.Equal(t, "he\x00\x00\x00", got, "extended with zeros, not the old bytes")
	require.NoError(t, f.Close())

	a, err := fsys.OpenFile("/rel", os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = a.Write([]byte("++"))
	require.NoError(t, err)
	require.NoError(t, a.Close())
	got, _ = read(fsys, "/rel")
	assert.Equal(t, "he\x00\x00\x00++", got, "O_APPEND writes at the end")

	require.NoError(t, fsys.SyncDir("/"))
	d.Crash(false)
	got, _ = read(d.FS(), "/rel")
	assert.Equal(t, "hello world", got, "the truncates and writes after the Sync are undone")

	st, err := d.FS().Stat("/rel")
	require.NoError(t, err)
	assert.Equal(t, "rel", st.Name())
	assert.Equal(t, int64(11), st.Size())
	assert.Equal(t, fs.FileMode(0o600), st.Mode())
	assert.False(t, st.IsDir())
	st, err = d.FS().Stat("/")
	require.NoError(t, err)
	assert.True(t, st.IsDir())
}

func TestReadDir(t *testing.T) {
	d := simdisk.New(1)
	fsys := d.FS()
	for _, name := range []string{"/c", "/a", "/b"} {
		create(t, fsys, name, name, false, false)
	}
	require.NoError(t, fsys.Mkdir("/d", 0o750))
	ents, err := fsys.ReadDir("/")
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	assert.Equal(t, []string{"a", "b", "c", "d"}, names, "sorted")
	assert.True(t, ents[3].IsDir())
	assert.Equal(t, fs.ModeDir, ents[3].Type())
	info, err := ents[0].Info()
	require.NoError(t, err)
	assert.Equal(t, int64(2), info.Size())
	_, err = fsys.ReadDir("/a")
	assert.ErrorIs(t, err, syscall.ENOTDIR)
}

func TestCorrupt(t *testing.T) {
	d := simdisk.New(3)
	fsys := d.FS()
	create(t, fsys, "/a.log", "aaaaaaaa", true, false)
	create(t, fsys, "/b.ckpt", "bbbbbbbb", true, false)
	create(t, fsys, "/empty.ckpt", "", true, false)
	require.NoError(t, fsys.SyncDir("/"))
	for range 20 {
		before, _ := read(fsys, "/b.ckpt")
		p, off, ok := d.Corrupt(func(p string) bool { return strings.HasSuffix(p, ".ckpt") })
		require.True(t, ok)
		require.Equal(t, "/b.ckpt", p, "the only non-empty match")
		after, _ := read(fsys, p)
		oneBitAt(t, before, after, off)
	}
	_, _, ok := d.Corrupt(func(string) bool { return false })
	assert.False(t, ok)

	appendTo(t, fsys, "/a.log", "+unsynced", false)
	p, off, ok := d.Corrupt(func(p string) bool { return p == "/a.log" })
	require.True(t, ok)
	require.NoError(t, d.CorruptFile("/a.log", 2))
	live, _ := read(fsys, p)
	d.Crash(false)
	durable, _ := read(d.FS(), p)
	assert.Equal(t, live[:len(durable)], durable, "the durable content is corrupted too: a crash does not heal it")
	if off != 2 {
		oneBitAt(t, "aaaaaaaa", durable[:2]+"a"+durable[3:], off)
	}
	assert.Error(t, d.CorruptFile("/empty.ckpt", 0), "nothing there")
	assert.Error(t, d.CorruptFile("/missing", 0))
	assert.Equal(t, uint64(22), d.Stats().Corruptions)
}

// oneBitAt checks that after differs from before in one bit, of byte off.
func oneBitAt(t *testing.T, before, after string, off int64) {
	t.Helper()
	require.Len(t, after, len(before))
	for i := range before {
		if int64(i) == off {
			require.Equal(t, 1, bitsSet(before[i]^after[i]), "byte %d: one bit flipped", i)
		} else {
			require.Equal(t, before[i], after[i], "byte %d unchanged", i)
		}
	}
}

func bitsSet(x byte) int {
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}

func TestReadFault(t *testing.T) {
	d := simdisk.New(5)
	fsys := d.FS()
	create(t, fsys, "/f", strings.Repeat("x", 64), true, true)
	d.SetReadFault(1)
	f, err := fsys.OpenFile("/f", os.O_RDONLY, 0)
	require.NoError(t, err)
	defer f.Close()
	b := make([]byte, 64)
	for range 10 {
		_, err := f.ReadAt(b, 0)
		require.NoError(t, err)
		diff := 0
		for _, c := range b {
			diff += bitsSet(c ^ 'x')
		}
		require.Equal(t, 1, diff, "one bit flipped in what the read returns")
	}
	d.SetReadFault(0)
	_, err = f.ReadAt(b, 0)
	require.NoError(t, err)
	assert.Equal(t, strings.Repeat("x", 64), string(b), "the file itself is unchanged")
	assert.Equal(t, uint64(10), d.Stats().ReadFaults)
}

func TestStats(t *testing.T) {
	d := simdisk.New(1)
	fsys := d.FS()
	create(t, fsys, "/a", "12345", true, true)
	appendTo(t, fsys, "/a", "678", false)
	st := d.Stats()
	assert.Equal(t, uint64(2), st.Writes)
	assert.Equal(t, uint64(8), st.WrittenBytes)
	assert.Equal(t, uint64(1), st.Syncs)
	assert.Equal(t, uint64(1), st.DirSyncs)
	assert.Equal(t, 1, st.Files)
	assert.Equal(t, int64(8), st.HeldBytes, "appended: the durable content is a prefix of the live one, held once")
	create(t, fsys, "/a", "ab", false, false) // rewritten: two contents
	assert.Equal(t, int64(2+5), d.Stats().HeldBytes)
	d.Crash(false)
	st = d.Stats()
	assert.Equal(t, uint64(1), st.Crashes)
	assert.Equal(t, int64(5), st.HeldBytes, "after a crash live and durable are one")
}

// script runs a random sequence of calls on d, crashing now and then.
func script(t *testing.T, d *simdisk.Disk, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	names := []string{"/a", "/b", "/d/c", "/d/e", "/d"}
	for range 400 {
		fsys := d.FS()
		name := names[rng.IntN(len(names))]
		switch rng.IntN(8) {
		case 0:
			fsys.Mkdir(name, 0o755)
		case 1:
			fsys.SyncDir(filepath.Dir(name))
		case 2:
			fsys.Rename(name, names[rng.IntN(len(names))])
		case 3:
			fsys.Remove(name)
		case 4:
			d.Crash(rng.IntN(2) == 0)
		default:
			f, err := fsys.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
			if err != nil {
				continue
			}
			f.Write(bytes.Repeat([]byte{byte(rng.IntN(256))}, rng.IntN(2000)))
			if rng.IntN(2) == 0 {
				f.Sync()
			}
			if rng.IntN(10) == 0 {
				f.Truncate(int64(rng.IntN(100)))
			}
			f.Close()
		}
		if rng.IntN(20) == 0 {
			d.Corrupt(nil)
		}
	}
	d.Crash(true)
}

func TestDeterminism(t *testing.T) {
	for seed := range uint64(10) {
		d1, d2 := simdisk.New(seed), simdisk.New(seed)
		script(t, d1, seed)
		script(t, d2, seed)
		require.Equal(t, dump(t, d1.FS(), "/"), dump(t, d2.FS(), "/"), "seed %d", seed)
		require.Equal(t, d1.Stats(), d2.Stats())
		require.Positive(t, d1.Stats().Crashes)
	}
	// The disk's seed alone changes what tears keep.
	d1, d2 := simdisk.New(1), simdisk.New(2)
	script(t, d1, 7)
	script(t, d2, 7)
	assert.NotEqual(t, dump(t, d1.FS(), "/"), dump(t, d2.FS(), "/"))
}

func TestLockNeedsItsDirectory(t *testing.T) {
	d := simdisk.New(1)
	_, err := d.FS().Lock("/no/LOCK")
	assert.ErrorIs(t, err, fs.ErrNotExist)
	lk, err := d.FS().Lock("/LOCK")
	require.NoError(t, err)
	defer lk.Close()
	_, err = d.FS().Stat("/LOCK")
	assert.NoError(t, err, "the lock file exists, as the operating system's")
	assert.True(t, errors.Is(func() error { _, err := d.FS().Lock("LOCK"); return err }(), store.ErrLocked), "the same lock by another spelling")
}

// A planned crash strikes at the chosen call: the calls before it work,
// it and every later one fail, and what was not synced before it is gone.
func TestCrashAfter(t *testing.T) {
	d := simdisk.New(1)
	fsys := d.FS()
	f, err := fsys.OpenFile("/log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(t, err)
	require.NoError(t, fsys.SyncDir("/"))
	d.CrashAfter(2, false)
	_, err = f.Write([]byte("synced"))
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	assert.False(t, d.Crashed())
	_, err = f.Write([]byte(" lost"))
	require.ErrorIs(t, err, simdisk.ErrCrashed, "the third call")
	assert.True(t, d.Crashed())
	require.ErrorIs(t, f.Sync(), simdisk.ErrCrashed, "and every later one")
	g, err := d.FS().OpenFile("/log", os.O_RDONLY, 0)
	require.NoError(t, err)
	b := make([]byte, 64)
	n, _ := g.ReadAt(b, 0)
	assert.Equal(t, "synced", string(b[:n]))
}
