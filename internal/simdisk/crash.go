package simdisk

import (
	"bytes"
	"slices"
)

// Crash cuts the power: the FS handed out so far fails every call from
// now on with ErrCrashed, its open files and locks too (the locks are let
// go), and the disk keeps only what was durable — with tear, also part of
// what was being written. The package doc says exactly what survives.
// FS returns the file system of the next incarnation.
func (d *Disk) Crash(tear bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.crash(tear)
}

// CrashAfter plans a crash (see Crash) for when the program has made n
// more calls: the n+1'th call through the FS or its files fails with
// ErrCrashed, and so does everything after. The power cut lands
// wherever the program is — between a write and its fsync, between a
// rename and the directory's sync — while the program runs on.
func (d *Disk) CrashAfter(n int, tear bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.planned, d.plannedIn, d.plannedTear = true, n, tear
}

// Crashed reports whether the view handed out last (FS) has crashed,
// by Crash or as CrashAfter planned.
func (d *Disk) Crashed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.view.gen != d.gen
}

// crash is Crash with d.mu held. The next FS is made by the next call
// of FS, so that Crashed tells a crash from a fresh view.
func (d *Disk) crash(tear bool) {
	d.planned = false
	memo := map[*inode]*inode{}
	d.root = d.survive(d.root, tear, memo)
	clear(d.locks)
	d.gen++
	d.counters.Crashes++
}

// survive returns what is left of n after a crash: for a directory, its
// durable entries, each surviving in turn, in sorted order; for a file,
// its content (see kept). memo maps each inode already reached to what
// is left of it.
func (d *Disk) survive(n *inode, tear bool, memo map[*inode]*inode) *inode {
	if m, ok := memo[n]; ok {
		return m
	}
	if !n.dir {
		content := d.kept(n, tear)
		content = content[:len(content):len(content)]
		m := &inode{mode: n.mode, data: content, durable: content}
		memo[n] = m
		return m
	}
	m := newDir(n.mode)
	memo[n] = m
	for _, name := range sortedNames(n.synced) {
		c := n.synced[name]
		if _, seen := memo[c]; seen && c.dir {
			continue // a directory has one name: the first one reached
		}
		m.live[name] = d.survive(c, tear, memo)
		m.synced[name] = m.live[name]
	}
	return m
}

// kept returns the content file n keeps at a crash: its durable content,
// or, with tear, what the package doc says.
func (d *Disk) kept(n *inode, tear bool) []byte {
	live, durable := n.data, n.durable
	if !tear || bytes.Equal(live, durable) {
		return durable
	}
	if len(live) < len(durable) || !bytes.Equal(live[:len(durable)], durable) {
		if d.rng.IntN(2) == 0 {
			return durable
		}
		return slices.Clone(live)
	}
	k := d.rng.IntN(len(live) - len(durable) + 1)
	out := slices.Clone(live[:len(durable)+k])
	if k > 0 && d.rng.IntN(4) == 0 {
		from := max(len(durable), (len(out)-1)/SectorSize*SectorSize)
		for i := from; i < len(out); i++ {
			out[i] ^= byte(1 + d.rng.IntN(255))
		}
	}
	return out
}
