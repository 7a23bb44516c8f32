package simdisk

import (
	"errors"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/rmbd/rmbd/store"
)

// ErrCrashed is what every call through an FS (and its files and locks)
// fails with once the disk crashed after the FS was handed out.
var ErrCrashed = errors.New("simdisk: the process crashed")

// SectorSize is the size of the sectors a torn write garbles (see Crash).
const SectorSize = 512

// Disk is a simulated disk. See the package doc.
type Disk struct {
	mu       sync.Mutex
	root     *inode
	view     *view            // the FS of the current incarnation
	gen      uint64           // incarnation: crashes so far
	locks    map[string]*lock // held locks, by clean path
	rng      *rand.Rand       // tears and corruption
	readRng  *rand.Rand       // read faults
	readP    float64          // probability that a read is corrupted
	counters Stats
	// A crash CrashAfter planned: in plannedIn calls.
	planned     bool
	plannedIn   int
	plannedTear bool
}

// inode is a file or a directory.
type inode struct {
	dir  bool
	mode fs.FileMode

	// A file's content: live, and as of its last Sync. The two may share
	// a backing array, durable being a prefix of data (capped, so that
	// appending to data never shows through durable); a write below
	// len(durable) copies data first (see own).
	data, durable []byte

	// A directory's entries: live, and as of its last SyncDir.
	live, synced map[string]*inode
}

func newDir(mode fs.FileMode) *inode {
	return &inode{dir: true, mode: fs.ModeDir | mode.Perm(), live: map[string]*inode{}, synced: map[string]*inode{}}
}

// aliased reports whether n's durable content shares n's live backing
// array.
func (n *inode) aliased() bool {
	return len(n.durable) > 0 && len(n.data) > 0 && &n.durable[0] == &n.data[0]
}

// own makes n's live content safe to change at offsets below off: a copy
// of its own if it shares bytes there with the durable content.
func (n *inode) own(off int64) {
	if off < int64(len(n.durable)) && n.aliased() {
		n.data = slices.Clone(n.data)
	}
}

// cut shortens n's live content to size bytes, if longer.
func (n *inode) cut(size int64) {
	switch {
	case size >= int64(len(n.data)):
	case size < int64(len(n.durable)) && n.aliased():
		n.data = slices.Clone(n.data[:size]) // appends must not overwrite durable bytes
	default:
		n.data = n.data[:size]
	}
}

// grow lengthens n's live content to size bytes with zeros, if shorter.
func (n *inode) grow(size int64) {
	if old := len(n.data); size > int64(old) {
		n.data = slices.Grow(n.data, int(size)-old)[:size]
		clear(n.data[old:]) // what a cut left in the backing array
	}
}

// New returns an empty disk (a root directory, durable) whose random
// choices are drawn from generators seeded by seed.
func New(seed uint64) *Disk {
	d := &Disk{
		root:    newDir(0o755),
		locks:   map[string]*lock{},
		rng:     rand.New(rand.NewPCG(seed, 0x73696d6469736b01)),
		readRng: rand.New(rand.NewPCG(seed, 0x73696d6469736b02)),
	}
	d.view = &view{d: d, gen: d.gen}
	return d
}

// FS returns the file system of the current incarnation: the same value
// until the next Crash, after which it fails every call with ErrCrashed.
func (d *Disk) FS() store.FS {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.view.gen != d.gen {
		d.view = &view{d: d, gen: d.gen}
	}
	return d.view
}

// Stats are counts of what a Disk did, and what it holds.
type Stats struct {
	Writes       uint64 // File.Write calls that wrote
	WrittenBytes uint64 // bytes they wrote
	Syncs        uint64 // File.Sync calls
	DirSyncs     uint64 // FS.SyncDir calls
	Crashes      uint64 // Crash calls
	ReadFaults   uint64 // reads SetReadFault corrupted
	Corruptions  uint64 // bits Corrupt and CorruptFile flipped
	// Files is the number of files reachable by a live or a durable name.
	Files int
	// HeldBytes is the content those files hold, live and durable (bytes
	// the two share counted once): the memory the disk uses, roughly.
	HeldBytes int64
}

// Stats returns the counts so far and what the disk holds now.
func (d *Disk) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.counters
	seen := map[*inode]bool{}
	var walk func(n *inode)
	walk = func(n *inode) {
		if seen[n] {
			return
		}
		seen[n] = true
		if !n.dir {
			st.Files++
			st.HeldBytes += int64(len(n.data))
			if !n.aliased() {
				st.HeldBytes += int64(len(n.durable))
			}
			return
		}
		for _, c := range n.live {
			walk(c)
		}
		for _, c := range n.synced {
			walk(c)
		}
	}
	walk(d.root)
	return st
}

// SetReadFault makes each File.ReadAt that reads any byte flip one random
// bit of what it returns with probability p (0 switches it off); the
// file itself does not change. It models a disk or a bus that corrupts
// reads.
func (d *Disk) SetReadFault(p float64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.readP = p
}

// Corrupt flips one random bit of one random non-empty file among those
// match accepts (given each file's absolute, clean path; nil: every
// file), at rest: in its live content and, if
// the offset is there, its durable content too, so that a crash does not
// heal it. Files are taken by path, in sorted order, so that the choice
// is deterministic. It returns the file's path and the offset of the
// byte changed; ok is false if no file qualified.
func (d *Disk) Corrupt(match func(path string) bool) (path string, off int64, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var paths []string
	var files []*inode
	d.walkFiles(d.root, "/", func(p string, n *inode) {
		if len(n.data) > 0 && (match == nil || match(p)) {
			paths, files = append(paths, p), append(files, n)
		}
	})
	if len(files) == 0 {
		return "", 0, false
	}
	i := d.rng.IntN(len(files))
	off = d.rng.Int64N(int64(len(files[i].data)))
	d.flip(files[i], off)
	return paths[i], off, true
}

// CorruptFile flips one random bit of the byte at off of the file name,
// as Corrupt does. The byte must be in the file's live content.
func (d *Disk) CorruptFile(name string, off int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	n, err := d.lookup(clean(name))
	switch {
	case err != nil:
		return &fs.PathError{Op: "corrupt", Path: name, Err: err}
	case n.dir:
		return &fs.PathError{Op: "corrupt", Path: name, Err: syscall.EISDIR}
	case off < 0 || off >= int64(len(n.data)):
		return &fs.PathError{Op: "corrupt", Path: name, Err: syscall.EINVAL}
	}
	d.flip(n, off)
	return nil
}

// flip flips a random bit of the byte at off of n, live and durable.
func (d *Disk) flip(n *inode, off int64) {
	bit := byte(1) << d.rng.IntN(8)
	shared := n.aliased()
	n.data[off] ^= bit
	if !shared && off < int64(len(n.durable)) {
		n.durable[off] ^= bit
	}
	d.counters.Corruptions++
}

// walkFiles calls fn for each file of the live tree under n (at path p),
// by path in sorted order.
func (d *Disk) walkFiles(n *inode, p string, fn func(string, *inode)) {
	if !n.dir {
		fn(p, n)
		return
	}
	for _, name := range sortedNames(n.live) {
		d.walkFiles(n.live[name], filepath.Join(p, name), fn)
	}
}

// sortedNames returns the names of entries, sorted.
func sortedNames(entries map[string]*inode) []string {
	names := make([]string, 0, len(entries))
	for name := range entries {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// clean returns name as an absolute, clean path: relative paths are
// relative to the root.
func clean(name string) string {
	return filepath.Clean("/" + name)
}

// components splits a clean path into its names; the root has none.
func components(p string) []string {
	if p == "/" {
		return nil
	}
	return strings.Split(p[1:], "/")
}

// lookup finds the clean path p in the live tree.
func (d *Disk) lookup(p string) (*inode, error) {
	n := d.root
	for _, name := range components(p) {
		if !n.dir {
			return nil, syscall.ENOTDIR
		}
		c, ok := n.live[name]
		if !ok {
			return nil, syscall.ENOENT
		}
		n = c
	}
	return n, nil
}

// parent finds the directory holding the clean path p, and p's name in
// it. The root has no parent (EBUSY: nothing may replace it).
func (d *Disk) parent(p string) (*inode, string, error) {
	if p == "/" {
		return nil, "", syscall.EBUSY
	}
	dir, name := filepath.Split(p)
	n, err := d.lookup(clean(dir))
	if err != nil {
		return nil, "", err
	}
	if !n.dir {
		return nil, "", syscall.ENOTDIR
	}
	return n, name, nil
}
