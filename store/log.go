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
type Log struct {
	dir    string
	fp     filter.Fingerprint
	policy FsyncPolicy
	log    *slog.Logger

	mu       sync.Mutex
	drained  *sync.Cond // appenders waiting for room
	buf      []byte     // appended, not yet taken by the writer
	end      uint64     // position after the last record appended
	rotation *Rotation  // pending: records before its mark stay in the old segment
	closing  bool

	kick chan struct{} // something to write, rotate or close
	done chan struct{} // the writer has returned

	// The writer's own.
	f       *os.File
	seq     uint64
	written uint64
	inSeg   uint64 // record bytes written to the current segment
	spare   []byte

	synced  atomic.Uint64
	fsyncs  atomic.Uint64
	bytes   atomic.Uint64 // bytes written to segments
	failure atomic.Pointer[error]

	waitMu    sync.Mutex
	waitCond  *sync.Cond
	callbacks []callback
}

type callback struct {
	pos uint64
	fn  func(error)
}

// openLog starts a log whose first segment is seq.
func openLog(dir string, fp filter.Fingerprint, seq uint64, policy FsyncPolicy, log *slog.Logger) (*Log, error) {
	l := &Log{dir: dir, fp: fp, policy: policy, log: log, seq: seq,
		kick: make(chan struct{}, 1), done: make(chan struct{})}
	l.drained = sync.NewCond(&l.mu)
	l.waitCond = sync.NewCond(&l.waitMu)
	f, err := l.create(seq)
	if err != nil {
		return nil, err
	}
	l.f = f
	go l.run()
	return l, nil
}

// segmentName is the file name of log segment seq.
func segmentName(seq uint64) string { return fmt.Sprintf("log-%016x.log", seq) }

// create makes segment seq: its header written and durable under its
// real name, open for appending.
func (l *Log) create(seq uint64) (*os.File, error) {
	name := segmentName(seq)
	if err := writeFile(l.dir, name, appendLogHeader(nil, l.fp, seq)); err != nil {
		return nil, err
	}
	return os.OpenFile(filepath.Join(l.dir, name), os.O_WRONLY|os.O_APPEND, 0)
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
	select {
	case l.kick <- struct{}{}:
	default:
	}
	return end
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

// err returns the write error the log stopped on, if any.
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
	select {
	case l.kick <- struct{}{}:
	default:
	}
	return r
}

// Wait returns the sequence number of the segment that ends at the mark,
// once the next segment has taken over.
func (r *Rotation) Wait() (uint64, error) {
	<-r.done
	return r.seq, r.err
}

// run is the writer: it writes what was appended, fsyncs as the policy
// says, rotates segments and wakes waiters.
func (l *Log) run() {
	defer close(l.done)
	var tick <-chan time.Time
	if l.policy == FsyncEverySec {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-l.kick:
		case <-tick:
			l.fsync(l.written)
			continue
		}
		l.mu.Lock()
		data, end, rot, closing := l.buf, l.end, l.rotation, l.closing
		l.buf, l.spare = l.spare[:0], data
		l.rotation = nil
		l.drained.Broadcast()
		l.mu.Unlock()

		start := l.written
		if rot != nil {
			cut := int(min(max(rot.at, start)-start, uint64(len(data))))
			l.write(data[:cut])
			l.fsync(rot.at) // the old segment is whole on disk before the next begins
			rot.seq = l.seq
			rot.err = l.next()
			close(rot.done)
			data = data[cut:]
		}
		l.write(data)
		if l.policy == FsyncAlways || closing {
			l.fsync(end)
		}
		if closing {
			l.f.Close()
			if l.inSeg == 0 && l.err() == nil { // nothing in it: leave no file to replay
				os.Remove(l.f.Name())
				syncDir(l.dir)
			}
			l.fail(ErrClosed)
			return
		}
	}
}

// write writes data to the current segment.
func (l *Log) write(data []byte) {
	if len(data) == 0 || l.err() != nil {
		return
	}
	if _, err := l.f.Write(data); err != nil {
		l.fail(fmt.Errorf("writing log segment %s: %w", l.f.Name(), err))
		return
	}
	l.written += uint64(len(data))
	l.inSeg += uint64(len(data))
	l.bytes.Add(uint64(len(data)))
}

// fsync makes the records before pos durable, if they are not yet, and
// wakes whoever waits for them.
func (l *Log) fsync(pos uint64) {
	pos = min(pos, l.written)
	if pos <= l.synced.Load() || l.err() != nil {
		return
	}
	if l.policy != FsyncNo {
		if err := l.f.Sync(); err != nil {
			l.fail(fmt.Errorf("fsync of log segment %s: %w", l.f.Name(), err))
			return
		}
		l.fsyncs.Add(1)
	}
	l.waitMu.Lock()
	l.synced.Store(pos)
	var ready []callback
	keep := l.callbacks[:0]
	for _, c := range l.callbacks {
		if c.pos <= pos {
			ready = append(ready, c)
		} else {
			keep = append(keep, c)
		}
	}
	l.callbacks = keep
	l.waitCond.Broadcast()
	l.waitMu.Unlock()
	for _, c := range ready {
		c.fn(nil)
	}
}

// next closes the current segment and starts segment seq+1.
func (l *Log) next() error {
	f, err := l.create(l.seq + 1)
	if err != nil {
		l.fail(fmt.Errorf("starting log segment %d: %w", l.seq+1, err))
		return err
	}
	l.f.Close()
	l.f, l.seq, l.inSeg = f, l.seq+1, 0
	return nil
}

// fail records the error the log stops on and fails every waiter.
func (l *Log) fail(err error) {
	if !l.failure.CompareAndSwap(nil, &err) {
		return
	}
	if !errors.Is(err, ErrClosed) {
		l.log.Error("the log of adds failed; acknowledged adds now fail", "err", err)
	}
	l.waitMu.Lock()
	cbs := l.callbacks
	l.callbacks = nil
	l.waitCond.Broadcast()
	l.waitMu.Unlock()
	for _, c := range cbs {
		c.fn(err)
	}
}

// close writes and syncs what was appended and stops the writer.
func (l *Log) close() error {
	l.mu.Lock()
	l.closing = true
	l.drained.Broadcast()
	l.mu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
	<-l.done
	if err := l.err(); !errors.Is(err, ErrClosed) {
		return err
	}
	return nil
}
