package store

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/wire"
	"github.com/zeebo/xxh3"
)

// Options tune a Store.
type Options struct {
	// Fsync says when the log reaches the disk.
	Fsync FsyncPolicy
	// Repair starts despite damaged checkpoints: every block that
	// verifies is kept, the damaged files are set aside (NAME.damaged),
	// and anti-entropy refills the rest from peers.
	Repair bool
	// CheckpointInterval is the longest time between checkpoints while
	// anything changes.
	CheckpointInterval time.Duration
	// CheckpointLogBytes starts a checkpoint early once the log has grown
	// this much since the last one.
	CheckpointLogBytes uint64
	// Logger receives warnings about what recovery found; nil discards.
	Logger *slog.Logger
	// RetryInterval is how often a store that cannot write its data
	// directory tries again (see Store.Health); 0 is
	// DefaultRetryInterval. It also paces the background checkpoints'
	// checks.
	RetryInterval time.Duration
	// FS is the file system Open opens the data directory in; nil is the
	// operating system's. (Dir.Open keeps a filter in its Dir's file
	// system, whatever this says: see OpenDirFS.)
	FS FS
}

// DefaultOptions: fsync every second, a checkpoint every minute or every
// 64 MiB of log, a retry every half second while the disk fails, the
// operating system's file system.
func DefaultOptions() Options {
	return Options{Fsync: FsyncEverySec, CheckpointInterval: time.Minute, CheckpointLogBytes: 64 << 20,
		RetryInterval: DefaultRetryInterval}
}

// Recovery is what Open found and loaded.
type Recovery struct {
	Checkpoints int      // checkpoint files read
	Rows        uint64   // rows in them
	Segments    int      // log segments replayed
	Records     int      // log records replayed
	Keys        int      // keys in them
	Truncated   int      // log segments cut at a record that did not verify
	Damaged     []string // checkpoints set aside (Repair)
	Missing     []string // checkpoints the folder should hold and does not (Repair)
	Took        time.Duration
}

// Store keeps one filter in its folder of a data directory. See the
// package doc.
type Store struct {
	fs   FS
	dir  string // the filter's folder
	def  Definition
	f    *filter.Filter
	opts Options
	log  *slog.Logger
	data *Dir // the data directory it was opened from
	owns bool // opened by Open: Close closes data too
	l    *Log

	// adds is held for reading by each add between logging it and
	// applying it to the filter; a checkpoint takes it to mark the log,
	// so that every record before the mark is in the rows it copies.
	adds sync.RWMutex

	ckptMu      sync.Mutex // one checkpoint at a time
	since       uint64     // the filter generation the last checkpoint copied
	ckptSeq     uint64
	fullBytes   int64
	deltas      int
	deltaBytes  int64
	ckptLogPos  uint64 // log position at the last checkpoint
	lastCkpt    time.Time
	checkpoints atomic.Uint64
	ckptBytes   atomic.Uint64
	ckptRows    atomic.Uint64

	held holding // what the FILTER file says the folder holds

	// damaged are checkpoints that did not verify, loaded with Repair:
	// kept (renamed) rather than deleted by the checkpoint that replaces them.
	damaged map[string]bool

	stop    chan struct{}
	closing atomic.Bool // Close or Discard began: the next one does nothing
	done    chan struct{}
	started atomic.Bool
}

// maxDeltas is how many delta checkpoints pile up before a full one
// replaces them all.
const maxDeltas = 8

// filtersDir is where filters' folders live in a data directory.
const filtersDir = "filters"

// FolderName returns the folder of the filter called name: the name
// itself when it is short and plain (a-z 0-9 . _ - @: segments are
// NAME@SEGMENT), a hash of it otherwise (names may hold anything a file
// name may not).
func FolderName(name string) string {
	plain := len(name) <= 64 && name != "." && name != ".." && !strings.HasPrefix(name, tempPrefix)
	for _, c := range name {
		plain = plain && (c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == '@')
	}
	if plain && name != "" {
		return name
	}
	h := xxh3.HashString128(name).Bytes()
	return "f-" + hex.EncodeToString(h[:])
}

// Open opens the data directory dir for the filter def, creating what is
// missing, and loads what it holds into f, an empty filter of def's
// fingerprint: every checkpoint, then every log segment. It refuses a
// directory that holds another filter (ErrMismatch) or is in use
// (ErrLocked), and, unless opts.Repair, one with a damaged checkpoint.
// The Store holds the directory: Close closes both. (OpenDir, then
// Dir.Open, opens several filters of one directory.)
func Open(dir string, def Definition, f *filter.Filter, opts Options) (*Store, Recovery, error) {
	d, err := OpenDirFS(opts.FS, dir)
	if err != nil {
		return nil, Recovery{}, err
	}
	s, rec, err := d.Open(def, f, opts)
	if err != nil {
		d.Close()
		return nil, rec, err
	}
	s.owns = true
	return s, rec, nil
}

// openStore opens def's folder in d; d has marked it open.
func openStore(d *Dir, def Definition, f *filter.Filter, opts Options) (*Store, Recovery, error) {
	dir := d.path
	began := time.Now()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.CheckpointInterval <= 0 || opts.CheckpointLogBytes == 0 || opts.RetryInterval < 0 {
		return nil, Recovery{}, errors.New("store: checkpoint interval and log bytes must be positive, retry interval not negative")
	}
	if opts.RetryInterval == 0 {
		opts.RetryInterval = DefaultRetryInterval
	}
	if !validName(def.Name) {
		return nil, Recovery{}, fmt.Errorf("store: filter name %q: 1 to %d bytes of UTF-8, no control characters", def.Name, MaxNameLen)
	}
	if f.Fingerprint() != def.FP {
		return nil, Recovery{}, fmt.Errorf("store: filter %v is not the definition's %v", f.Fingerprint(), def.FP)
	}
	fdir := filepath.Join(dir, filtersDir, FolderName(def.Name))
	if err := mkdirs(d.fs, dir, fdir); err != nil {
		return nil, Recovery{}, err
	}
	s := &Store{fs: d.fs, dir: fdir, def: def, f: f, opts: opts, log: opts.Logger, data: d,
		stop: make(chan struct{}), done: make(chan struct{})}
	rec, logSeq, err := s.recover()
	if err != nil {
		return nil, rec, err
	}
	if s.l, err = openLog(s.fs, fdir, def.FP, logSeq, opts.Fsync, s.log); err != nil {
		return nil, rec, err
	}
	if len(rec.Damaged) > 0 || len(rec.Missing) > 0 { // repaired: put what verified safely on disk, then set the damaged files aside
		s.damaged = map[string]bool{}
		for _, name := range rec.Damaged {
			s.damaged[name] = true
		}
		if _, err := s.checkpoint(true); err != nil {
			s.l.close()
			return nil, rec, err
		}
		for _, name := range rec.Damaged {
			s.fs.Rename(filepath.Join(fdir, name), filepath.Join(fdir, name+".damaged"))
		}
		s.damaged = nil
		s.fs.SyncDir(fdir)
	}
	s.lastCkpt = time.Now()
	if rec.Segments > 0 { // a crash left a log: checkpoint it soon, or crashes would pile segments up
		s.lastCkpt = time.Time{}
	}
	rec.Took = time.Since(began)
	return s, rec, nil
}

// mkdirs creates the data directory and the filter's folder, durably.
func mkdirs(fsys FS, dir, fdir string) error {
	for _, d := range []string{dir, filepath.Join(dir, filtersDir), fdir} {
		if err := fsys.Mkdir(d, 0o755); err == nil {
			if err := fsys.SyncDir(filepath.Dir(d)); err != nil {
				return err
			}
		} else if !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	return nil
}

// files lists the checkpoints and log segments in the filter's folder,
// by sequence number.
func (s *Store) files() (ckpts, logs []uint64, err error) {
	ents, err := s.fs.ReadDir(s.dir)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range ents {
		name := e.Name()
		if seq, ok := seqOf(name, "ckpt-", ".ckpt"); ok {
			ckpts = append(ckpts, seq)
		} else if seq, ok := seqOf(name, "log-", ".log"); ok {
			logs = append(logs, seq)
		}
	}
	slices.Sort(ckpts)
	slices.Sort(logs)
	return ckpts, logs, nil
}

func seqOf(name, prefix, suffix string) (uint64, bool) {
	hexSeq, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return 0, false
	}
	if hexSeq, ok = strings.CutSuffix(hexSeq, suffix); !ok || len(hexSeq) != 16 {
		return 0, false
	}
	seq, err := strconv.ParseUint(hexSeq, 16, 64)
	return seq, err == nil
}

// recover checks the FILTER file, loads every checkpoint and replays every
// log segment, and returns the sequence number the next segment takes.
func (s *Store) recover() (Recovery, uint64, error) {
	var rec Recovery
	if err := removeTemps(s.fs, s.dir); err != nil {
		return rec, 0, err
	}
	ckpts, logs, err := s.files()
	if err != nil {
		return rec, 0, err
	}
	held, err := s.checkDefinition(len(ckpts)+len(logs) > 0)
	if err != nil {
		return rec, 0, err
	}
	if rec.Missing, err = s.checkHeld(held, ckpts); err != nil {
		return rec, 0, err
	}
	newestFull, haveFull := uint64(0), false
	for i, seq := range s.loadOrder(ckpts) {
		r, err := s.loadCheckpoint(seq, i == 0)
		name := checkpointName(seq)
		var fe *FileError
		switch {
		case err != nil && !errors.As(err, &fe):
			return rec, 0, err
		case err != nil && errors.Is(err, ErrMismatch):
			return rec, 0, fmt.Errorf("%w: %s", ErrMismatch, err)
		case err != nil || len(r.damage) > 0:
			if err == nil {
				err = &FileError{Path: filepath.Join(s.dir, name), Offset: int64(r.damage[0]),
					Err: damaged(fmt.Sprintf("%d damaged places, %d blocks (%d rows) verify", len(r.damage), r.blocks, r.rows))}
			}
			if !s.opts.Repair {
				return rec, 0, fmt.Errorf("%w (start with --repair to keep every row that verifies and let anti-entropy refill the rest)", err)
			}
			s.log.Warn("damaged checkpoint: keeping the rows that verify", "err", err)
			rec.Damaged = append(rec.Damaged, name)
		}
		rec.Checkpoints++
		rec.Rows += r.rows
		s.ckptSeq = max(s.ckptSeq, seq)
		if r.header.kind != ckptDelta && len(r.damage) == 0 && err == nil && seq > newestFull {
			newestFull, haveFull = seq, true
		}
	}
	s.countDeltas(ckpts, newestFull, haveFull)
	s.held = holding{first: newestFull, last: s.ckptSeq}
	// What the checkpoints held is on disk: the next delta starts after it.
	// What the log replays is not yet in any checkpoint: it counts as
	// changed, so that the checkpoint that deletes the segments writes it.
	s.since = s.f.Advance()
	for _, seq := range logs {
		if err := s.replay(seq, &rec); err != nil {
			return rec, 0, err
		}
	}
	next := uint64(1)
	if len(logs) > 0 {
		next = logs[len(logs)-1] + 1
	}
	return rec, next, nil
}

// checkDefinition compares the FILTER file with the definition asked
// for, or creates it, and returns the checkpoints it says the folder
// holds.
func (s *Store) checkDefinition(haveData bool) (holding, error) {
	path := filepath.Join(s.dir, defFile)
	b, err := readFile(s.fs, path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !haveData:
		return holding{}, writeFile(s.fs, s.dir, defFile, encodeDefinition(s.def, holding{}))
	case errors.Is(err, fs.ErrNotExist) && !s.opts.Repair:
		return holding{}, &FileError{Path: path, Err: damaged("missing, though the folder holds checkpoints or log segments (start with --repair to use them with the flags' definition)")}
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return holding{}, err
	}
	if err == nil {
		d, h, at, derr := decodeDefinition(b)
		if derr == nil {
			if d.FP != s.def.FP || d.Name != s.def.Name || d.Segment != s.def.Segment {
				theirs, ours := d.String(), s.def.String()
				if theirs == ours { // sized alike, made otherwise
					theirs, ours = theirs+" ("+d.FP.String()+")", ours+" ("+s.def.FP.String()+")"
				}
				return holding{}, fmt.Errorf("%w: %s holds %s; the flags ask for %s "+
					"(start with the flags it was made with, or give another --data-dir)", ErrMismatch, s.dir, theirs, ours)
			}
			return h, nil
		}
		if !s.opts.Repair {
			return holding{}, &FileError{Path: path, Offset: int64(at), Err: fmt.Errorf("%w (start with --repair to rewrite it from the flags)", derr)}
		}
		s.log.Warn("damaged FILTER file rewritten from the flags", "file", path, "err", derr)
	}
	return holding{}, writeFile(s.fs, s.dir, defFile, encodeDefinition(s.def, holding{}))
}

// checkHeld refuses a folder that lacks a checkpoint its FILTER file says
// it holds — a start would hold less than the filter did — unless
// repairing, which goes on with what is there and returns what is
// missing (anti-entropy refills it from peers).
func (s *Store) checkHeld(h holding, ckpts []uint64) ([]string, error) {
	var missing []string
	for seq := h.first; h.first > 0 && seq <= h.last; seq++ {
		if !slices.Contains(ckpts, seq) {
			missing = append(missing, checkpointName(seq))
		}
	}
	if len(missing) == 0 {
		return nil, nil
	}
	if !s.opts.Repair {
		return nil, fmt.Errorf("%w: %s (the folder's FILTER file says it holds checkpoints %d to %d, and %d of them are gone; "+
			"start with --repair to keep what is left and let anti-entropy refill the rest)", ErrMissing,
			filepath.Join(s.dir, missing[0]), h.first, h.last, len(missing))
	}
	s.log.Warn("checkpoints missing: starting with what is left; anti-entropy refills the rest from peers",
		"dir", s.dir, "missing", missing)
	return missing, nil
}

// loadOrder puts the newest image checkpoint first, to be mapped as the
// filter itself, then the others by number: every other checkpoint is
// OR-ed in, which the order does not change.
func (s *Store) loadOrder(ckpts []uint64) []uint64 {
	order := slices.Clone(ckpts)
	for i := len(order) - 1; i >= 0; i-- {
		if s.kind(order[i]) == ckptImage {
			img := order[i]
			return append([]uint64{img}, slices.Delete(order, i, i+1)...)
		}
	}
	return order
}

// kind reads the kind of checkpoint seq from its header; a header that
// does not read says delta, and loading reports it.
func (s *Store) kind(seq uint64) uint8 {
	f, err := s.fs.OpenFile(filepath.Join(s.dir, checkpointName(seq)), os.O_RDONLY, 0)
	if err != nil {
		return ckptDelta
	}
	defer f.Close()
	head := make([]byte, ckptHeaderSize)
	if _, err := f.ReadAt(head, 0); err != nil {
		return ckptDelta
	}
	h, _, err := decodeCkptHeader(head)
	if err != nil {
		return ckptDelta
	}
	return h.kind
}

// loadCheckpoint ORs every verifying block of checkpoint seq into the
// filter; an image may become the filter's memory itself when adopt.
func (s *Store) loadCheckpoint(seq uint64, adopt bool) (ckptRead, error) {
	path := filepath.Join(s.dir, checkpointName(seq))
	if s.kind(seq) == ckptImage && s.f.Fingerprint().Layout == filter.Blocked {
		return loadImage(s.fs, path, s.f, adopt)
	}
	b, unmap, err := mapFile(s.fs, path)
	if err != nil {
		return ckptRead{}, err
	}
	defer unmap()
	r, err := readCheckpoint(b, s.def.FP, func(rs wire.RowSync) error {
		for first, rows := range rs.Runs.All() {
			if err := s.f.LoadRows(rs.FP, uint64(first), rows); err != nil {
				return damaged(err.Error()) // rows beyond the filter: verified bytes, wrong content
			}
		}
		return nil
	})
	var fe *FileError
	if errors.As(err, &fe) {
		fe.Path = path
	}
	return r, err
}

// countDeltas notes the sizes of the newest full checkpoint and the
// deltas after it, to decide when the next full one is due.
func (s *Store) countDeltas(ckpts []uint64, newestFull uint64, haveFull bool) {
	s.fullBytes, s.deltas, s.deltaBytes = 0, 0, 0
	for _, seq := range ckpts {
		st, err := s.fs.Stat(filepath.Join(s.dir, checkpointName(seq)))
		if err != nil || haveFull && seq < newestFull {
			continue
		}
		if haveFull && seq == newestFull {
			s.fullBytes = st.Size()
			continue
		}
		s.deltas++
		s.deltaBytes += st.Size()
	}
	if !haveFull {
		s.deltas = maxDeltas // the first checkpoint is a full one
	}
}

// replay applies every verifying record of log segment seq, and cuts the
// segment at the first record that does not verify (a torn tail is what
// a crash leaves).
func (s *Store) replay(seq uint64, rec *Recovery) error {
	path := filepath.Join(s.dir, segmentName(seq))
	b, unmap, err := mapFile(s.fs, path)
	if err != nil {
		return err
	}
	fp, hseq, off, herr := decodeLogHeader(b)
	switch {
	case herr != nil:
		unmap()
		s.log.Warn("log segment without a readable header set aside", "file", path, "offset", off, "err", herr)
		return s.fs.Rename(path, path+".damaged")
	case fp != s.def.FP || hseq != seq:
		unmap()
		return &FileError{Path: path, Offset: 10, Err: fmt.Errorf("%w: a log of %v (segment %d), not %v", ErrMismatch, fp, hseq, s.def.FP)}
	}
	records, keys := 0, 0
	var bad error
	for off < len(b) {
		r, n, err := nextRecord(b[off:])
		if err != nil {
			bad = err
			break
		}
		if r.kind == recordHashes {
			for h := range r.hashes {
				s.f.AddHash(h)
			}
		} else {
			for k := range r.keys {
				s.f.Add(k)
			}
		}
		records++
		keys += r.count
		off += n
	}
	dropped := 0
	if bad != nil {
		dropped = countRecords(b[off:])
	}
	size := len(b)
	unmap()
	rec.Segments++
	rec.Records += records
	rec.Keys += keys
	if bad == nil {
		return nil
	}
	rec.Truncated++
	s.log.Warn("log segment truncated at the last good record", "file", path, "offset", off,
		"bytes_dropped", size-off, "records_dropped", dropped, "reason", bad)
	if err := truncate(s.fs, path, int64(off)); err != nil { // tidiness only: no segment is appended to after a start
		s.log.Warn("the torn tail could not be cut: it is read past again until a checkpoint deletes the segment", "file", path, "err", err)
	}
	return nil
}

// countRecords counts the records that still verify in b, past damage.
func countRecords(b []byte) int {
	n := 0
	for off := 1; off < len(b); {
		if _, size, err := nextRecord(b[off:]); err == nil {
			n++
			off += size
		} else {
			off++
		}
	}
	return n
}

// Start runs checkpoints in the background: every CheckpointInterval
// while anything changes, and early when the log grows past
// CheckpointLogBytes; and, while the store cannot write its data
// directory, a retry every RetryInterval (see Health). Close stops them.
func (s *Store) Start() {
	if s.started.Swap(true) {
		return // started already
	}
	go func() {
		defer close(s.done)
		t := time.NewTicker(s.opts.RetryInterval)
		defer t.Stop()
		failing := false
		for {
			s.background(&failing)
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
}

// due reports whether a checkpoint is due.
func (s *Store) due() bool {
	s.ckptMu.Lock()
	defer s.ckptMu.Unlock()
	return s.l.End()-s.ckptLogPos >= s.opts.CheckpointLogBytes || time.Since(s.lastCkpt) >= s.opts.CheckpointInterval
}

// Log returns the log of local adds (its positions and counts: adds go
// through Add).
func (s *Store) Log() *Log { return s.l }

// Dir returns the filter's folder.
func (s *Store) Dir() string { return s.dir }

// CheckpointInfo says what one checkpoint wrote.
type CheckpointInfo struct {
	Full  bool
	Rows  uint64
	Bytes int64
	Took  time.Duration
}

// Checkpoint writes the rows changed since the last checkpoint (or every
// row, once deltas pile up) to a new file, then deletes the log segments
// it covers and, after a full one, the older checkpoints. Adds and has
// go on meanwhile: rows are found and copied a frame at a time.
func (s *Store) Checkpoint() (CheckpointInfo, error) { return s.checkpoint(false) }

// Flush is Checkpoint for rows that must be on disk before an answer,
// many times in a row (each chunk of a load, under --fsync always): a
// delta, until the deltas hold as many bytes as a full checkpoint would
// (the filter's, before the first), or maxFlushDeltas of them, so that
// the whole costs about what it changes.
func (s *Store) Flush() (CheckpointInfo, error) { return s.checkpointAs(false, false) }

// maxFlushDeltas bounds the delta checkpoints flushes pile up.
const maxFlushDeltas = 64

func (s *Store) checkpoint(forceFull bool) (CheckpointInfo, error) {
	return s.checkpointAs(forceFull, true)
}

// checkpointAs writes a checkpoint: full if forced, once the deltas hold
// as many bytes as the filter, or, byCount, once there are maxDeltas.
func (s *Store) checkpointAs(forceFull, byCount bool) (CheckpointInfo, error) {
	s.ckptMu.Lock()
	defer s.ckptMu.Unlock()
	began := time.Now()
	fullBytes := s.fullBytes
	if fullBytes == 0 { // no full checkpoint yet: one would be about the filter
		fullBytes = int64(s.f.SizeBytes())
	}
	full := forceFull || byCount && s.deltas >= maxDeltas || s.deltas >= maxFlushDeltas || s.deltaBytes >= fullBytes
	m := s.mark(full)
	if m.rot == nil {
		s.lastCkpt = time.Now()
		return CheckpointInfo{}, nil
	}
	covers, err := m.rot.Wait()
	if err != nil {
		return CheckpointInfo{}, err
	}
	info, err := s.writeCheckpoint(full, covers, m)
	if err != nil {
		return CheckpointInfo{}, err
	}
	info.Took = time.Since(began)
	// Every add applied before the mark is on disk now, the ones whose
	// records the log dropped included: a failing log may take adds to
	// keep again (Health says whether it did).
	s.l.resumeAfterCheckpoint()
	return info, nil
}

// ckptMark is where a checkpoint begins: the log position and filter
// generation it copies from, and the rotation of the log there (nil when
// there is nothing to write).
type ckptMark struct {
	rot    *Rotation
	logPos uint64
	gen    uint64
}

// mark begins a checkpoint while no add is between logging and applying,
// so that every record before the mark is in the rows it copies. Nothing
// changed since the last checkpoint and a healthy log leave nothing to
// write: no rotation.
func (s *Store) mark(full bool) ckptMark {
	s.adds.Lock()
	defer s.adds.Unlock()
	m := ckptMark{logPos: s.l.End(), gen: s.f.Advance()}
	idle := !full && m.logPos == s.ckptLogPos && s.f.LastChanged() <= s.since && s.l.Health() == nil
	if !idle {
		m.rot = s.l.Mark()
	}
	return m
}

// writeCheckpoint writes the checkpoint m began, covering the log
// segments up to covers, records it in the FILTER file and deletes what
// it covers. A failure leaves every file it would have replaced.
func (s *Store) writeCheckpoint(full bool, covers uint64, m ckptMark) (CheckpointInfo, error) {
	since, kind := s.since, ckptDelta
	if full {
		since, kind = 0, ckptFull
	}
	seq := s.ckptSeq + 1
	h := ckptHeader{kind: kind, fp: s.def.FP, seq: seq, covers: covers}
	var rows uint64
	var size int64
	var err error
	if full && wantImage(s.f) {
		rows, size, err = writeImage(s.fs, s.dir, h, s.f)
	} else {
		rows, size, err = writeBlocks(s.fs, s.dir, h, s.f, since)
	}
	if err != nil {
		return CheckpointInfo{}, err
	}
	s.ckptSeq, s.since, s.ckptLogPos, s.lastCkpt = seq, m.gen, m.logPos, time.Now()
	if full {
		s.fullBytes, s.deltas, s.deltaBytes = size, 0, 0
	} else {
		s.deltas++
		s.deltaBytes += size
	}
	s.checkpoints.Add(1)
	s.ckptBytes.Add(uint64(size))
	s.ckptRows.Add(rows)
	held := holding{first: s.held.first, last: seq}
	if full || held.first == 0 {
		held.first = seq
	}
	if err := writeFile(s.fs, s.dir, defFile, encodeDefinition(s.def, held)); err != nil {
		return CheckpointInfo{}, err // the old files stay: nothing is lost
	}
	s.held = held
	s.removeCovered(covers, seq, full)
	return CheckpointInfo{Full: full, Rows: rows, Bytes: size}, nil
}

// writeBlocks writes checkpoint h as blocks of the rows of f changed
// after generation since.
func writeBlocks(fsys FS, dir string, h ckptHeader, f *filter.Filter, since uint64) (uint64, int64, error) {
	w, err := newCkptWriter(fsys, dir, h)
	if err != nil {
		return 0, 0, err
	}
	if _, err := wire.FrameRows(f, since, []filter.Run{{First: 0, Count: f.Rows()}}, ckptFrame, w.block); err != nil {
		w.abort()
		return 0, 0, err
	}
	if err := w.commit(); err != nil {
		return 0, 0, err
	}
	return w.rows, w.bytes, nil
}

// restartWritesMuch reports whether a start would OR in, over the last
// full checkpoint, rows enough (the deltas, and the rows changed since
// the last checkpoint) to copy much of the filter: more than a
// sixty-fourth of its bytes touch almost every page of it.
func (s *Store) restartWritesMuch() bool {
	s.ckptMu.Lock()
	pending := s.deltaBytes
	since := s.since
	s.ckptMu.Unlock()
	s.f.Advance()
	for r := range s.f.ChangedRuns(max(since, 1)) {
		pending += int64(r.Count) * int64(s.f.RowBytes())
	}
	return pending > imageBytes(s.def.FP)/64
}

// removeCovered deletes the log segments up to covers and, after a full
// checkpoint seq, the checkpoints before it. What a crash leaves undeleted
// is deleted next time: reading a file twice changes nothing.
func (s *Store) removeCovered(covers, seq uint64, full bool) {
	ckpts, logs, err := s.files()
	if err != nil {
		return
	}
	for _, l := range logs {
		if l <= covers {
			s.fs.Remove(filepath.Join(s.dir, segmentName(l)))
		}
	}
	for _, c := range ckpts {
		if full && c < seq && !s.damaged[checkpointName(c)] {
			s.fs.Remove(filepath.Join(s.dir, checkpointName(c)))
		}
	}
	s.fs.SyncDir(s.dir)
}

// Stats are what the store has done.
type Stats struct {
	Fsyncs, LogBytes, Checkpoints, CheckpointBytes, CheckpointRows uint64
	// Unwritable counts the times the store could not write its data
	// directory and refused adds to keep (see Health).
	Unwritable uint64
}

// Plus returns the sum of s and o: what two stores did together.
func (s Stats) Plus(o Stats) Stats {
	return Stats{Fsyncs: s.Fsyncs + o.Fsyncs, LogBytes: s.LogBytes + o.LogBytes, Checkpoints: s.Checkpoints + o.Checkpoints,
		CheckpointBytes: s.CheckpointBytes + o.CheckpointBytes, CheckpointRows: s.CheckpointRows + o.CheckpointRows,
		Unwritable: s.Unwritable + o.Unwritable}
}

// Stats returns what the store has done so far.
func (s *Store) Stats() Stats {
	return Stats{Fsyncs: s.l.Fsyncs(), LogBytes: s.l.Bytes(), Checkpoints: s.checkpoints.Load(),
		CheckpointBytes: s.ckptBytes.Load(), CheckpointRows: s.ckptRows.Load(), Unwritable: s.l.Failures()}
}

// Close stops the checkpoints, writes a last one (so that the next start
// reads no log), stops the log and lets go of the directory. No add may
// come after it begins. The last checkpoint is a full one when the deltas
// would otherwise touch much of the filter at the next start: a database
// checkpoints at shutdown so that it starts fast, and so does this.
func (s *Store) Close() error { return s.close(true) }

// Discard closes the store without a last checkpoint: for a folder about
// to be removed (a dropped filter, a slice out of its window), whose rows
// nobody will read.
func (s *Store) Discard() error { return s.close(false) }

func (s *Store) close(checkpoint bool) error {
	if !s.closing.CompareAndSwap(false, true) {
		return nil // closed already, or closing
	}
	close(s.stop)
	if s.started.Load() {
		<-s.done
	}
	var err error
	if checkpoint {
		_, err = s.checkpoint(s.restartWritesMuch())
	}
	err = errors.Join(err, s.l.close())
	s.data.release(s.def.Name)
	if s.owns {
		err = errors.Join(err, s.data.Close())
	}
	return err
}
