// Package shed keeps one flooding source from taking a node's datagram
// readers from everybody else.
package shed

import (
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rmbd/rmbd/internal/sockets"
)

// Sockets are the datagram sockets a node reads: how full each one's
// queue is, and a socket filter that drops chosen sources' datagrams.
type Sockets interface {
	// Queue returns reader's receive queue: how full, and how many it
	// dropped. It may cost a system call.
	Queue(reader int) sockets.Queue
	// Block makes reader's socket drop, unread, the datagrams from srcs
	// (none: lift it); errors.ErrUnsupported where it cannot.
	Block(reader int, srcs []netip.Addr) error
}

// Shedding. A datagram reader that falls behind — its socket's queue
// fills past a quarter, or overflows and the kernel drops datagrams
// whoever sent them — sheds the senders taking more than their share of
// what it reads: the kernel is told to drop their datagrams before they
// are queued (a socket filter, on Linux), and until it does, or where it
// cannot, the reader drops them unanswered as soon as it reads them. So
// the queue empties and everybody else is served again, without waiting
// behind a flood: one flooding source cannot make a node lose its other
// clients' requests or their latency. (Many sources each under its share
// are load, not a flood from one.)
//
// A block lasts blockFor, and is renewed while the socket keeps dropping
// datagrams (the blocked sources still send); once they stop it is
// lifted — by the reader, or by the node's housekeeping if no datagram
// comes to the reader at all.

// Shedder is one reader's shedding state. The reader alone touches the
// fields above mu; the block is shared with housekeeping.
type Shedder struct {
	reader int
	socks  Sockets
	log    *slog.Logger
	blocks atomic.Uint64 // times sources were blocked

	seen    uint64 // the socket's drop count last looked at
	checked int    // datagrams since the queue was last looked at
	on      bool   // counting sources: the reader was behind lately
	lastHit time.Time

	window map[netip.Addr]uint32 // datagrams per source in the current window
	total  uint32
	began  time.Time
	heavy  map[netip.Addr]bool // over their share in the last window: shed here

	lifted     atomic.Uint32 // bumped by review when it lifts a block
	liftedSeen uint32

	mu           sync.Mutex
	blocked      []netip.Addr // dropped by the kernel
	blockedUntil time.Time
	blockDrops   uint64 // the socket's drops when the block was last renewed
	blockedSince time.Time
}

// Shedding limits: the queue is looked at every checkEvery datagrams; a
// window is shedWindow datagrams or shedWindowTime, whichever ends first;
// a source is heavy with more than 1/shedShare of a window's datagrams
// (and at least shedMin of them); counting stops shedCalm after the last
// window that had a heavy source; a block lasts blockFor and is renewed
// while the socket drops more than blockKeep datagrams a second. A heavy
// source also sends at least shedRate datagrams a second: a client
// alone on a quiet socket has every share of it, and is no flood.
const (
	checkEvery     = 64
	shedWindow     = Window
	shedWindowTime = 100 * time.Millisecond
	shedShare      = 16
	shedMin        = 64
	shedRate       = 2000
	shedCalm       = time.Second
	blockFor       = BlockFor
	blockKeep      = 1000
	maxBlocked     = 16 // what one socket filter names; more are shed by the reader
)

// Window is the most datagrams a window of counting holds; BlockFor how
// long a block lasts unless its sources keep sending.
const (
	Window   = 8192
	BlockFor = 2 * time.Second
)

// New returns a Shedder for each of readers datagram readers of socks.
func New(readers int, socks Sockets, log *slog.Logger) []*Shedder {
	out := make([]*Shedder, readers)
	for i := range out {
		out[i] = &Shedder{reader: i, socks: socks, log: log}
	}
	return out
}

// Drop reports whether the datagram from `from`, just read by the
// Shedder's reader, is to be shed. Only that reader calls it.
func (s *Shedder) Drop(from netip.Addr) bool {
	if s.checked++; s.checked >= checkEvery {
		s.checked = 0
		if q := s.socks.Queue(s.reader); q.Drops != s.seen || q.Bytes > q.Size/4 {
			if !s.on {
				s.on, s.began, s.window = true, time.Now(), map[netip.Addr]uint32{}
			}
			s.seen, s.lastHit = q.Drops, time.Now()
		}
	}
	if !s.on {
		return false
	}
	if l := s.lifted.Load(); l != s.liftedSeen { // the flood is over: forget who sent it
		s.liftedSeen, s.heavy = l, nil
	}
	s.window[from]++
	s.total++
	if s.total >= shedWindow || s.total%checkEvery == 0 && time.Since(s.began) >= shedWindowTime {
		s.nextWindow()
	}
	return s.heavy[from]
}

// nextWindow finds the heavy sources of the window ending, has the kernel
// drop them, and starts the next window; with none lately, counting
// stops.
func (s *Shedder) nextWindow() {
	var heavy []netip.Addr
	now := time.Now()
	least := max(uint32(shedMin), s.total/shedShare+1, uint32(shedRate*now.Sub(s.began).Seconds()))
	for src, c := range s.window {
		if c >= least {
			heavy = append(heavy, src)
		}
	}
	s.heavy = map[netip.Addr]bool{}
	for _, src := range heavy {
		s.heavy[src] = true
	}
	if len(heavy) > 0 {
		s.lastHit = now
		s.block(heavy, now)
	}
	s.total, s.began = 0, now
	clear(s.window)
	if now.Sub(s.lastHit) > shedCalm {
		s.on, s.heavy, s.window = false, nil, nil
	}
}

// block adds srcs to the sources the kernel drops.
func (s *Shedder) block(srcs []netip.Addr, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var added []netip.Addr
	for _, src := range srcs {
		if !slices.Contains(s.blocked, src) && len(s.blocked) < maxBlocked {
			s.blocked, added = append(s.blocked, src), append(added, src)
		}
	}
	if len(added) == 0 {
		return
	}
	if err := s.socks.Block(s.reader, s.blocked); err != nil {
		s.blocked = nil // unsupported here: the reader sheds them itself
		return
	}
	s.blocks.Add(uint64(len(added)))
	s.log.Warn("datagram flood: the kernel drops these sources' datagrams for now",
		"sources", addrList(added), "socket", s.reader)
	s.blockedUntil, s.blockDrops, s.blockedSince = now.Add(blockFor), s.socks.Queue(s.reader).Drops, now
}

// Review renews a block whose time is up while its sources still send,
// or lifts it. The node's housekeeping calls it now and then.
func (s *Shedder) Review(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.blocked) == 0 || now.Before(s.blockedUntil) {
		return
	}
	drops := s.socks.Queue(s.reader).Drops
	rate := float64(drops-s.blockDrops) / now.Sub(s.blockedSince).Seconds()
	if rate > blockKeep {
		s.blockedUntil, s.blockDrops, s.blockedSince = now.Add(blockFor), drops, now
		return
	}
	if err := s.socks.Block(s.reader, nil); err != nil {
		s.log.Error("could not lift a datagram block", "err", err)
		return
	}
	s.log.Info("datagram flood over: no source blocked", "sources", addrList(s.blocked), "socket", s.reader)
	s.blocked = nil
	s.lifted.Add(1)
}

// Blocks returns how many times sources were blocked.
func (s *Shedder) Blocks() uint64 { return s.blocks.Load() }

// Blocked returns how many sources the kernel drops now.
func (s *Shedder) Blocked() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.blocked)
}

func addrList(as []netip.Addr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}
