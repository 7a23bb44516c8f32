// Package store keeps filters in a data directory, so that a node loses
// no add it acknowledged, whatever stops it.
//
// A filter only grows and every operation on it is idempotent, and the
// store leans on that. Local adds go to a log, in batches, each record
// with its own checksum (for the blocked layout the 64-bit key hash is
// the whole record of a key; the classic layout logs the key). Now and
// then a checkpoint writes the rows changed since the one before, then
// deletes the log segments it covers; once deltas pile up a full
// checkpoint replaces them. Rows merged from peers reach disk through
// checkpoints only: the peers hold them too.
//
// Recovery ORs every checkpoint into an empty filter, in any order, then
// replays every log segment there is. Replaying a record twice changes
// nothing, so no exact log position is needed, and a file a crash left
// behind undeleted costs time, never correctness.
//
// A data directory:
//
//	DIR/LOCK                         flock'd by the one node using DIR
//	DIR/CATALOG                      the named filters the node knows of
//	DIR/filters/NAME/FILTER          the filter's name, sizing and fingerprint
//	DIR/filters/NAME/ckpt-SEQ.ckpt   checkpoints (SEQ: 16 hex digits)
//	DIR/filters/NAME/log-SEQ.log     log segments
//
// Every file starts with a magic, a format version and the filter's
// fingerprint, and is created as a temporary file, fsynced, renamed and
// its directory fsynced. A torn log tail (the normal result of a crash)
// is cut at the last good record with a warning; a damaged checkpoint
// stops Open unless Options.Repair, which keeps every block that verifies.
// docs/FORMAT.md gives every file byte by byte.
//
// A disk that fills up or fails a write is a state the store leaves on
// its own (see Store.Health): adds the caller acknowledges (Add) are
// refused with ErrUnwritable, naming the cause and the file, while adds
// nobody waits for (AddUnacked) and reads go on in memory; the store
// retries every Options.RetryInterval, and a checkpoint, which holds
// every add applied meanwhile, ends the failure. Health and HealthChanged
// report it.
//
// Every file operation goes through an FS (Options.FS, OpenDirFS): the
// operating system's by default, or a test's that fails on request
// (internal/faultfs) or simulates a disk.
//
// Open opens a directory for one filter; OpenDir opens it for several
// (Dir.Open each), and keeps the catalog (Dir.WriteCatalog).
//
//	s, rec, err := store.Open(dir, def, f, store.DefaultOptions())
//	if err != nil { ... }
//	s.Start() // checkpoints and retries in the background
//	var sc store.Scratch
//	fresh, wait, err := s.Add(keys, bits, &sc) // logged, then applied; refused while the disk fails
//	if err != nil { ... } // errors.Is(err, store.ErrUnwritable)
//	err = wait.Wait(ctx) // with FsyncAlways, before acknowledging
//	...
//	s.AddUnacked(keys, bits, &sc) // nobody waits: never refused
//	err = s.Close() // a last checkpoint
package store
