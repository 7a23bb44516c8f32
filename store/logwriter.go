package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	bug "github.com/rmbd/rmbd/internal/mutate"
)

// The log's writer: one goroutine that owns the segment being written.
// It writes what was appended, fsyncs as the policy says, rotates
// segments for checkpoints, and keeps the log's health: a segment that
// fails a write or an fsync is broken for good — a short write may have
// left half a record at its end, and Linux may have dropped the dirty
// pages an fsync failed on — so the writer drops whatever comes next
// until a checkpoint's rotation starts a fresh segment. Only then, and
// once that checkpoint is on disk, are adds to keep taken again
// (resumeWrites).

// run is the writer.
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
		if l.step() {
			return
		}
	}
}

// step does what was asked since the last one: writes, rotates, resumes,
// closes. It reports whether the log is closed.
func (l *Log) step() bool {
	l.mu.Lock()
	data, end, rot, resume, closing := l.buf, l.end, l.rotation, l.resume, l.closing
	l.buf, l.spare = l.spare[:0], data
	l.rotation, l.resume = nil, nil
	l.drained.Broadcast()
	l.mu.Unlock()

	if rot != nil {
		data = l.rotate(rot, data)
	}
	l.write(data)
	if l.policy == FsyncAlways && !bug.AckUnsynced || closing {
		l.fsync(end)
	}
	if resume != nil {
		resume <- l.resumeWrites()
	}
	if closing {
		l.shut()
	}
	return closing
}

// rotate writes what data holds before the mark to the current segment,
// makes it durable and starts the next segment; it returns what comes
// after the mark. A segment that took no record goes on after the mark
// instead: what came before is all in earlier segments.
func (l *Log) rotate(rot *Rotation, data []byte) []byte {
	cut := int(min(max(rot.at, l.written)-l.written, uint64(len(data))))
	l.write(data[:cut])
	l.fsync(rot.at) // the old segment is whole on disk before the next begins
	if l.f != nil && !l.broken && l.inSeg == 0 && l.seq > 0 {
		rot.seq = l.seq - 1
	} else {
		rot.seq = l.seq
		rot.err = l.next()
	}
	close(rot.done)
	return data[cut:]
}

// write writes data to the current segment; a broken one drops it.
func (l *Log) write(data []byte) {
	if len(data) == 0 {
		return
	}
	l.written += uint64(len(data))
	if l.broken {
		return // the checkpoint that ends the failure holds it
	}
	n, err := l.f.Write(data)
	l.inSeg += uint64(n)
	l.bytes.Add(uint64(n))
	if err != nil {
		l.failed(fmt.Errorf("writing log segment %s: %w", l.path(), err))
	}
}

// fsync makes the records before pos durable, if they are not yet, and
// wakes whoever waits for them. It does nothing while the log fails: a
// position is synced only once everything before it is on disk, in a
// segment or a checkpoint.
func (l *Log) fsync(pos uint64) {
	pos = min(pos, l.written)
	if pos <= l.synced.Load() || l.err() != nil {
		return
	}
	if l.policy != FsyncNo {
		if err := l.f.Sync(); err != nil {
			l.failed(fmt.Errorf("fsync of log segment %s: %w", l.path(), err))
			return
		}
		l.fsyncs.Add(1)
	}
	l.advance(pos)
}

// advance notes that the records before pos are on disk and calls the
// callbacks waiting for them.
func (l *Log) advance(pos uint64) {
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

// next closes the current segment and starts segment seq+1, which is not
// broken.
func (l *Log) next() error {
	f, err := l.create(l.seq + 1)
	if err != nil {
		err = fmt.Errorf("starting log segment %s: %w", filepath.Join(l.dir, segmentName(l.seq+1)), err)
		l.failed(err)
		return err
	}
	if l.f != nil {
		l.f.Close()
	}
	l.f, l.seq, l.inSeg, l.broken = f, l.seq+1, 0, false
	return nil
}

// failed notes that the current segment cannot be written: nothing more
// goes to it. Unless the log fails already, it becomes unwritable: adds
// to keep are refused, every waiter fails, and it says so once. Failing
// already, it only keeps the newer cause for Health. (Only the writer
// changes failure.)
func (l *Log) failed(cause error) {
	l.broken = true
	err := fmt.Errorf("%w: %w", ErrUnwritable, cause)
	if l.failure.Load() != nil {
		l.failure.Store(&err)
		l.log.Debug("the log of adds still cannot be written", "err", cause)
		return
	}
	l.failure.Store(&err)
	l.failures.Add(1)
	l.failedAt = time.Now()
	l.log.Error("the log of adds cannot be written: adds to keep are refused and others kept in memory "+
		"until a checkpoint succeeds (retried in the background)", "dir", l.dir, "err", cause)
	l.changed.fire()
	l.failWaiters(err)
}

// failWaiters fails every waiter with err.
func (l *Log) failWaiters(err error) {
	l.waitMu.Lock()
	cbs := l.callbacks
	l.callbacks = nil
	l.waitCond.Broadcast()
	l.waitMu.Unlock()
	for _, c := range cbs {
		c.fn(err)
	}
}

// resumeWrites ends a failure, as a checkpoint asks once it holds every
// record before its rotation: if the segment the rotation started has
// taken every write since, the log takes adds to keep again and syncs
// what it holds (the positions dropped meanwhile are in the checkpoint).
// It returns the failure that goes on, if any.
func (l *Log) resumeWrites() error {
	err := l.err()
	if !errors.Is(err, ErrUnwritable) {
		return err
	}
	if l.broken { // failed again since the rotation: the next checkpoint tries again
		return err
	}
	l.failure.Store(nil)
	l.log.Warn("the log of adds is written again: adds to keep are taken", "dir", l.dir,
		"unwritable_for", time.Since(l.failedAt).Round(time.Millisecond).String())
	l.changed.fire()
	l.fsync(l.written)
	return l.err()
}

// shut closes the segment, removing it if it took nothing, and fails
// whoever still waits.
func (l *Log) shut() {
	if l.f != nil {
		l.f.Close()
		if l.inSeg == 0 && l.err() == nil { // nothing in it: leave no file to replay
			l.fs.Remove(l.path())
			l.fs.SyncDir(l.dir)
		}
	}
	closed := ErrClosed
	if l.failure.CompareAndSwap(nil, &closed) {
		l.failWaiters(closed)
	}
}
