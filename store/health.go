package store

import (
	"errors"
	"sync"
	"syscall"
	"time"
)

// Health. A disk that fills up, or fails a write or an fsync, makes the
// store unwritable for a while, not for good:
//
//   - Adds to keep (Add: the caller acknowledges them) are refused with
//     ErrUnwritable before they are applied; adds that were waiting for
//     the disk when it failed get the error through their Wait.
//   - Adds nobody waits for (AddUnacked) and reads go on: such adds are
//     applied in memory while the log drops their records.
//   - The store retries in the background (Start) every
//     Options.RetryInterval, or when asked (Retry): a checkpoint, whose
//     rotation starts a fresh log segment and whose rows hold everything
//     applied before it — the records the log dropped, and any half
//     record a short write left at the end of the old segment, which the
//     next start cuts off as a torn tail. Once the checkpoint is on disk
//     and the fresh segment has taken every write since, adds to keep are
//     taken again, and the old segments are deleted as after any
//     checkpoint.
//
// Every step is crash safe because it is an ordinary checkpoint: files
// are written under temporary names and renamed once durable, and the
// old files go only after the new ones are on disk, so a crash at any
// point leaves the last checkpoint, the segments since (a torn tail cut
// at start) and perhaps a new checkpoint — every add that was
// acknowledged.

// ErrUnwritable reports adds refused because the store cannot write its
// data directory (a full disk, an I/O error). The error wraps the cause,
// which names the file: errors.Is(err, syscall.ENOSPC) tells a full disk.
var ErrUnwritable = errors.New("store: cannot write to the data directory")

// Cause is what a client is told of why the store cannot write: the
// system's word for it ("no space left on device") when err holds one,
// else err whole (whose paths a client need not see, and may not fit).
func Cause(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return err.Error()
}

// DefaultRetryInterval is how often an unwritable store tries to write
// again.
const DefaultRetryInterval = 500 * time.Millisecond

// Health returns nil while the store takes adds to keep, and the reason
// (wrapping ErrUnwritable) while it refuses them.
func (s *Store) Health() error { return s.l.Health() }

// HealthChanged returns a channel closed at the next change of Health.
func (s *Store) HealthChanged() <-chan struct{} { return s.l.changed.wait() }

// Retry tries to end a failure now: a checkpoint, then the log takes
// adds to keep again if nothing failed since. It returns nil once the
// store is healthy (at once if it was), the error otherwise.
func (s *Store) Retry() error {
	if s.Health() == nil {
		return nil
	}
	if _, err := s.Checkpoint(); err != nil {
		return err
	}
	return s.Health()
}

// Health returns nil while the log takes adds to keep, and the reason
// (wrapping ErrUnwritable) while it cannot write them.
func (l *Log) Health() error {
	if err := l.err(); errors.Is(err, ErrUnwritable) {
		return err
	}
	return nil
}

// Failures returns how many times the log became unwritable.
func (l *Log) Failures() uint64 { return l.failures.Load() }

// resumeAfterCheckpoint asks the writer to end a failure, now that a
// checkpoint holds every record before its rotation, and returns its
// answer: nil if the log takes adds to keep again.
func (l *Log) resumeAfterCheckpoint() error {
	if l.Health() == nil {
		return nil
	}
	ch := make(chan error, 1)
	l.mu.Lock()
	l.resume = ch
	l.mu.Unlock()
	l.wake()
	select {
	case err := <-ch:
		return err
	case <-l.done:
		return l.err()
	}
}

// background runs in Start's goroutine, every RetryInterval: a retry
// while the store is unwritable, a checkpoint when one is due. It says
// once when checkpoints start failing and once when they work again;
// while the log is unwritable the log's own messages say it all.
func (s *Store) background(failing *bool) {
	if s.Health() == nil && !s.due() {
		return
	}
	_, err := s.Checkpoint()
	switch {
	case err != nil && !*failing && s.Health() == nil:
		s.log.Error("checkpoint failed; the log keeps every add meanwhile, and it is retried", "err", err)
		*failing = true
	case err == nil && *failing:
		s.log.Info("checkpoints are written again", "dir", s.dir)
		*failing = false
	}
}

// noSpace reports whether err says the disk (or the quota) is full: a
// state that freeing space ends.
func noSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// watch lets others wait for the next change of a state.
type watch struct {
	mu sync.Mutex
	ch chan struct{}
}

// wait returns a channel closed at the next fire.
func (w *watch) wait() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch == nil {
		w.ch = make(chan struct{})
	}
	return w.ch
}

// fire closes the channel of those waiting.
func (w *watch) fire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch != nil {
		close(w.ch)
		w.ch = nil
	}
}
