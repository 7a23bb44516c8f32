// Package simdisk is a simulated disk in memory: a store.FS that loses,
// when the machine crashes, what was not made durable, as a real disk
// under a real file system may. A deterministic cluster simulator gives
// each node a Disk and crashes and restarts nodes at will.
//
// # What is durable
//
// The disk models the two rules a program that keeps data must follow:
//
//   - A file's content is durable up to its last File.Sync: each file has
//     its live content (what reads see) and its durable content (a copy
//     of the live content at the last Sync).
//   - A name — a file created, renamed or removed, a directory made — is
//     durable once FS.SyncDir of its parent directory: each directory has
//     its live entries and its durable entries (a copy of the live ones
//     at the last SyncDir).
//
// A Sync makes a file's content durable even while its name is not: the
// content survives a crash if some durable name leads to it. The root
// directory always exists and is always durable.
//
// # A crash
//
// Disk.Crash is a power cut. The FS handed out before it (Disk.FS) fails
// every call from then on with ErrCrashed, its open files too, and its
// locks are let go. What survives is what a walk of the durable entries
// from the root reaches, in sorted order:
//
//   - each directory keeps its durable entries; a directory whose name
//     was not durable is gone with all it held;
//   - each file keeps its durable content;
//   - a file reached by two durable names (a rename between directories
//     of which only one was synced) survives as one file under both, a
//     hard link; a directory reached a second time is left out there, so
//     that the tree stays a tree.
//
// Crash(true) tears the unsynced writes, as a disk that wrote part of
// its cache before the power went does. For each surviving file, in
// sorted order of its first path, whose live content differs from its
// durable content:
//
//   - if the live content extends the durable content (bytes appended
//     since the last Sync), the file keeps a prefix of those appended
//     bytes, of a length drawn uniformly from 0 to all of them; when it
//     keeps any, with probability 1/4 the kept bytes of the last
//     SectorSize-byte sector they reach (sectors are aligned on file
//     offsets, and only appended bytes are touched) are garbled: each is
//     XORed with a random non-zero byte, so each differs from what was
//     written — a torn sector;
//   - otherwise (truncated or rewritten since the last Sync) the file
//     keeps, with probability 1/2 each, its durable or its whole live
//     content.
//
// Crash(false) keeps exactly the durable content. After a crash
// everything left is durable: the live state is the surviving state.
//
// # Calls and errors
//
// Paths are cleaned and rooted at "/" (a relative path is relative to
// the root). Errors are the operating system's: an *fs.PathError (an
// *os.LinkError from Rename) holding a syscall.Errno, so that
// errors.Is(err, fs.ErrNotExist) and os.IsNotExist both hold of a
// missing file; fs.ErrClosed for a closed file or lock; store.ErrLocked
// for a lock held; ErrCrashed after a crash. The disk is stricter than
// the operating system in two ways, to catch mistakes: OpenFile opens
// files only (a directory is EISDIR), and SyncDir syncs directories only
// (a file is ENOTDIR). Mode is what Mkdir or OpenFile's perm said;
// ModTime is the zero time. The disk maps no files (no store.Mapper): the
// store reads them.
//
// Disk.Corrupt and Disk.CorruptFile flip bits at rest, and
// Disk.SetReadFault in what reads return, for tests of checksums.
// Disk.Stats counts writes, syncs and crashes, and the bytes held.
//
// # Determinism
//
// Every random choice (tears, corruption, read faults) is drawn from
// generators seeded by New's seed, and never depends on map order: the
// same seed and the same sequence of calls give the same outcomes. Read
// faults draw from a generator of their own, so that the number of reads
// does not change what a crash does.
//
// The disk has no goroutines and no timers, so that it runs inside a
// testing/synctest bubble. It is safe for concurrent use: one mutex guards
// it all.
//
//	d := simdisk.New(seed)
//	opts := store.DefaultOptions()
//	opts.FS = d.FS()
//	s, _, err := store.Open("/data", def, f, opts)
//	...
//	d.Crash(true)  // s fails from now on; close it
//	opts.FS = d.FS()
//	s, _, err = store.Open("/data", def, f2, opts)
package simdisk
