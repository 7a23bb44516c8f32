package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rmbd/rmbd/filter"
)

// FsyncPolicy says when the log reaches the disk, as Redis's appendfsync.
type FsyncPolicy uint8

// Fsync policies.
const (
	// FsyncEverySec writes records to the OS as they come and fsyncs once
	// a second: a crash of the process loses nothing the OS got, a crash
	// of the machine at most the last second.
	FsyncEverySec FsyncPolicy = iota
	// FsyncAlways fsyncs before an add is acknowledged; concurrent adds
	// share one fsync (group commit).
	FsyncAlways
	// FsyncNo leaves flushing to the OS.
	FsyncNo
)

var fsyncNames = [...]string{FsyncEverySec: "everysec", FsyncAlways: "always", FsyncNo: "no"}

// String returns the policy's name as --fsync spells it.
func (p FsyncPolicy) String() string {
	if int(p) < len(fsyncNames) {
		return fsyncNames[p]
	}
	return fmt.Sprintf("fsync(%d)", uint8(p))
}

// ParseFsync reads always, everysec or no.
func ParseFsync(s string) (FsyncPolicy, error) {
	for p, n := range fsyncNames {
		if s == n {
			return FsyncPolicy(p), nil
		}
	}
	return 0, fmt.Errorf("fsync policy %q is not always, everysec or no", s)
}

// ErrClosed reports a log used after Close.
var ErrClosed = errors.New("store: log closed")

// maxBuffered bounds the records appended and not yet written; appenders
// wait beyond it, so that a slow disk slows adds instead of growing memory.
const maxBuffered = 64 << 20

// Log is the log of local adds of one filter: records appended in batches
// to segment files by one writer goroutine. A position is the number of
// record bytes appended since the log was opened; Append returns the
// position after its record, and the record is on disk once Synced
// reaches it.
//
// When a segment cannot be written or fsynced (a full disk, an I/O
// error) the log becomes unwritable (see Health): the writer drops what it
// is given instead of writing it, waiters fail, and the store refuses adds
// that must be kept until a checkpoint holds everything the log dropped
// and the log writes to a fresh segment again.
type Log struct {
	fs     FS
	dir    string
	fp     filter.Fingerprint
	policy FsyncPolicy
	log    *slog.Logger

	mu       sync.Mutex
	drained  *sync.Cond // appenders waiting for room
	buf      []byte     // appended, not yet taken by the writer
	end      uint64     // position after the last record appended
	rotation *Rotation  // pending: records before its mark stay in the old segment
	resume   chan error // pending: a checkpoint asks to end a failure (logwriter.go)
	closing  bool

	kick chan struct{} // something to write, rotate, resume or close
	done chan struct{} // the writer has returned

	// The writer's own.
	f        File // the segment being written; nil if none could be made
	seq      uint64
	written  uint64 // positions handed to segments: written, or dropped while broken
	inSeg    uint64 // record bytes written to the current segment
	broken   bool   // the current segment failed: nothing more goes to it
	failedAt time.Time
	spare    []byte

	synced   atomic.Uint64
	fsyncs   atomic.Uint64
	bytes    atomic.Uint64 // bytes written to segments
	failures atomic.Uint64 // times the log became unwritable
	// failure is why adds to keep are refused: an ErrUnwritable error,
	// or ErrClosed. Nil while the log is healthy.
	failure atomic.Pointer[error]
	changed watch // fired when the log becomes unwritable or recovers

	waitMu    sync.Mutex
	waitCond  *sync.Cond
	callbacks []callback
}

type callback struct {
	pos uint64
	fn  func(error)
}

// openLog starts a log whose first segment is seq. A disk with no room
// for that segment starts the log unwritable rather than failing: the
// store's retries start a segment once there is room.
func openLog(fsys FS, dir string, fp filter.Fingerprint, seq uint64, policy FsyncPolicy, log *slog.Logger) (*Log, error) {
	l := &Log{fs: fsys, dir: dir, fp: fp, policy: policy, log: log, seq: seq,
		kick: make(chan struct{}, 1), done: make(chan struct{})}
	l.drained = sync.NewCond(&l.mu)
	l.waitCond = sync.NewCond(&l.waitMu)
	f, err := l.create(seq)
	switch {
	case err == nil:
		l.f = f
	case noSpace(err):
		l.failed(fmt.Errorf("starting log segment %s: %w", l.path(), err))
	default:
		return nil, err
	}
	go l.run()
	return l, nil
}

// segmentName is the file name of log segment seq.
func segmentName(seq uint64) string { return fmt.Sprintf("log-%016x.log", seq) }

// path is the path of the segment being written.
func (l *Log) path() string { return filepath.Join(l.dir, segmentName(l.seq)) }

// create makes segment seq: its header written and durable under its
// real name, open for appending.
func (l *Log) create(seq uint64) (File, error) {
	name := segmentName(seq)
	if err := writeFile(l.fs, l.dir, name, appendLogHeader(nil, l.fp, seq)); err != nil {
		return nil, err
	}
	return l.fs.OpenFile(filepath.Join(l.dir, name), os.O_WRONLY|os.O_APPEND, 0)
}

// AppendHashes appends a record of key hashes (1 to wire.MaxBatchKeys)
// and returns the position after it.
func (l *Log) AppendHashes(hs []uint64) uint64 {
	return l.append(func(b []byte) []byte { return appendHashRecord(b, hs) })
}

// AppendKeys appends a record of keys (1 to wire.MaxBatchKeys, each at
// most wire.MaxKeyLen bytes) and returns the position after it.
func (l *Log) AppendKeys(keys [][]byte) uint64 {
	return l.append(func(b []byte) []byte { return appendKeyRecord(b, keys) })
}

func (l *Log) append(rec func([]byte) []byte) uint64 {
	l.mu.Lock()
	for len(l.buf) > maxBuffered && !l.closing {
		l.drained.Wait()
	}
	n := len(l.buf)
	l.buf = rec(l.buf)
	l.end += uint64(len(l.buf) - n)
	end := l.end
	l.mu.Unlock()
	l.wake()
	return end
}

// wake tells the writer there is something to do.
func (l *Log) wake() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// End returns the position after the last record appended.
func (l *Log) End() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.end
}

// Synced returns the position known to be on disk.
func (l *Log) Synced() uint64 { return l.synced.Load() }

// Fsyncs returns how many times the log fsynced.
func (l *Log) Fsyncs() uint64 { return l.fsyncs.Load() }

// Bytes returns the bytes written to log segments.
func (l *Log) Bytes() uint64 { return l.bytes.Load() }

// Policy returns the log's fsync policy.
func (l *Log) Policy() FsyncPolicy { return l.policy }

// err returns why the log takes no adds to keep: ErrUnwritable, or
// ErrClosed. Nil while healthy.
func (l *Log) err() error {
	if e := l.failure.Load(); e != nil {
		return *e
	}
	return nil
}

// WaitSynced blocks until the records before pos are on disk, the log
// fails, or ctx ends.
func (l *Log) WaitSynced(ctx context.Context, pos uint64) error {
	if l.synced.Load() >= pos {
		return nil
	}
	stop := context.AfterFunc(ctx, func() {
		l.waitMu.Lock()
		l.waitCond.Broadcast()
		l.waitMu.Unlock()
	})
	defer stop()
	l.waitMu.Lock()
	defer l.waitMu.Unlock()
	for l.synced.Load() < pos {
		if err := l.err(); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		l.waitCond.Wait()
	}
	return nil
}

// AfterSynced calls fn, on the writer's goroutine, once the records before
// pos are on disk (or at once if they are), or with the error the log
// failed on. fn must not block.
func (l *Log) AfterSynced(pos uint64, fn func(error)) {
	l.waitMu.Lock()
	if l.synced.Load() < pos && l.err() == nil {
		l.callbacks = append(l.callbacks, callback{pos, fn})
		l.waitMu.Unlock()
		return
	}
	l.waitMu.Unlock()
	if l.synced.Load() >= pos {
		fn(nil)
		return
	}
	fn(l.err())
}

// Rotation is a pending switch to a new segment; see Mark.
type Rotation struct {
	at   uint64
	done chan struct{}
	seq  uint64 // the segment that ends at the mark
	err  error
}

// Mark asks for a new segment from the current position on: records
// appended before it stay in the current segment, later ones go to the
// next. A checkpoint marks while no add is between logging and applying,
// so that every record of the old segments is in the filter it copies.
func (l *Log) Mark() *Rotation {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rotation != nil { // one at a time: checkpoints do not overlap
		return l.rotation
	}
	r := &Rotation{at: l.end, done: make(chan struct{})}
	l.rotation = r
	l.wake()
	return r
}

// Wait returns the sequence number of the segment that ends at the mark,
// once the next segment has taken over.
func (r *Rotation) Wait() (uint64, error) {
	<-r.done
	return r.seq, r.err
}

// close writes and syncs what was appended and stops the writer.
func (l *Log) close() error {
	l.mu.Lock()
	l.closing = true
	l.drained.Broadcast()
	l.mu.Unlock()
	l.wake()
	<-l.done
	if err := l.err(); !errors.Is(err, ErrClosed) {
		return err
	}
	return nil
}
