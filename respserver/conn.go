package respserver

import (
	"crypto/subtle"
	"errors"
	"io"
	"net"
	"time"

	"github.com/rmbd/rmbd/internal/conns"
	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/resp"
	"github.com/rmbd/rmbd/store"
)

// A connection's commands are served in order and their replies
// gathered until it has nothing more to read, then written at once:
// pipelining costs one write per read. Connections share the node's
// connection table and its bounds: the per-source and overall limits,
// the idle and mid-command timeouts and the buffer budget.

// respFlushAt is how many reply bytes gather before they are written even
// with commands still to read. They gather in a buffer of respOutBuf
// bytes borrowed from the buffer budget while there are replies to write
// (a client's replies count against --max-buffer-bytes as its commands
// do), given back once they are written and the client has no more
// commands in hand; when the budget has none to lend, on the heap, at
// most respFlushAt and a reply — an EXEC's reply being one (multi.go
// bounds it).
const (
	respFlushAt = 64 << 10
	respOutBuf  = 2 * respFlushAt
)

// Reading buffers: a connection's own is small, so that a thousand idle
// connections cost a few megabytes; a busy one borrows a larger one from
// the node's pool.
const (
	connReadBuf = 2 << 10
	connBusyBuf = 64 << 10
)

// respPreAuth bounds a command from a client that has not yet
// authenticated, as Redis does: a handful of short arguments.
var respPreAuth = resp.Limits{MaxArgs: 10, MaxBulk: 16 << 10, MaxInline: 16 << 10, MaxCommand: 64 << 10}

// respConn is one RESP client.
type respConn struct {
	cn      *conns.Conn
	id      int64
	proto   int  // 2 or 3 (HELLO)
	authed  bool // no password is configured, or it gave one
	name    string
	out     []byte        // replies not yet written
	outBuf  []byte        // the buffer out was borrowed as, nil when none
	err     error         // why a long command's pieces could not be read, or its reply written
	hangUp  bool          // quit, with the last word lingering (lingerClose)
	fails   int           // AUTH failures
	turn    bool          // it holds a long command's turn (long.go)
	gated   bool          // it holds the gate for reading (multi.go)
	execing bool          // it runs EXEC, holding the gate for writing
	tx      txState       // its transaction, after MULTI
	sc      store.Scratch // scratch for adds with a data directory
	waits   store.Waits   // what out waits for (--fsync always)
	acks    [][2]int      // where in out the replies to adds are (they wait for waits)
	bits    []byte        // scratch: which keys an add changed
	frame   []byte        // scratch: a batch for a placed filter (placed.go)
	answer  []byte        // scratch: the node's answer to it
	quit    bool
	rd      *resp.Reader
	// The last command run and filter looked up, for the next command,
	// which is most often the same; and counts not yet added to the
	// server's (once per read, and at the end: the counters are shared by
	// every core).
	lastName [24]byte
	lastLen  int
	lastCmd  *respCmd
	lookup   lookupCache
	counts   struct{ commands, asked, found, added, addedNew uint64 }
	// When the read deadline was last set, and to which timeout; when the
	// write deadline was (see refresh).
	readSet  time.Time
	readFor  time.Duration
	writeSet time.Time
}

// lookupCache is a connection's last filter lookup. A lookup is the same
// while the registry's snapshot is.
type lookupCache struct {
	snap any
	name []byte
	vs   registry.Versions
}

// lookup is s.reg.Lookup through rc's cache: the same name again, with
// no filter opened or closed since, costs a comparison and an atomic
// load.
func (s *Server) lookup(rc *respConn, name []byte) registry.Versions {
	snap := s.reg.Snapshot()
	c := &rc.lookup
	if c.snap == snap && string(c.name) == string(name) {
		return c.vs
	}
	vs := s.reg.Lookup(name)
	*c = lookupCache{snap: snap, name: append(c.name[:0], name...), vs: vs}
	return vs
}

// refresh reports whether a deadline of timeout, last set at set, is to
// be set again at now: a deadline is moved once it is stale by more than
// an eighth of its timeout (at most a second). On a busy connection a
// timer change per request is a measurable share of its CPU; a timeout
// that fires up to an eighth early costs nothing.
func refresh(set, now time.Time, timeout time.Duration) bool {
	return now.Sub(set) > min(timeout/8, time.Second)
}

// serve serves one connection.
func (s *Server) serve(cn *conns.Conn) {
	defer s.cfg.Conns.Release(cn)
	if !s.cfg.Policy.Open(cn.From.Addr()) {
		s.refuseProtected(cn)
		return
	}
	rc := &respConn{cn: cn, id: s.ids.Add(1), proto: 2, authed: len(s.cfg.Passwords) == 0}
	lim := s.cfg.Limits
	loosened := rc.authed // the full limits from the start, or once authenticated
	if !loosened {
		lim = respPreAuth
	}
	rc.rd = resp.NewReader(cn.C, connReadBuf, lim)
	rc.rd.Borrow(s.cfg.Buffers, connBusyBuf)
	defer rc.rd.Close()
	defer s.outRelease(rc)
	defer s.respCount(rc)
	defer s.txEnd(rc)
	defer s.ungate(rc)
	midCommand := false
	rc.rd.BeforeRead(func(begun bool) error { return s.beforeRead(rc, begun, &midCommand) })
	for !rc.quit {
		cmd, err := rc.rd.Next()
		if err == nil {
			s.outBorrow(rc)
			rc.counts.commands++
			s.enter(rc)
			s.respCommand(rc, cmd)
			err = rc.err
		}
		if err != nil {
			s.respFailed(rc, err, midCommand)
			return
		}
		if rc.authed && !loosened {
			loosened = true
			rc.rd.SetLimits(s.cfg.Limits)
		}
		if len(rc.out) >= respFlushAt {
			if s.respFlush(rc) != nil {
				return
			}
		}
	}
	if rc.hangUp {
		s.respLastWord(rc)
		return
	}
	s.respFlush(rc)
}

// outBorrow gives rc.out a buffer from the budget, if it has none, for
// the replies of the commands in hand.
func (s *Server) outBorrow(rc *respConn) {
	if rc.outBuf != nil {
		return
	}
	if b, ok := s.cfg.Buffers.Get(respOutBuf); ok {
		rc.outBuf = b
		rc.out = append(b[:0], rc.out...)
	}
}

// outRelease gives rc.out's buffer back, its replies written.
func (s *Server) outRelease(rc *respConn) {
	if rc.outBuf != nil {
		s.cfg.Buffers.Put(rc.outBuf)
		rc.outBuf, rc.out = nil, nil
	}
	if cap(rc.out) > respFlushAt {
		rc.out = nil
	}
}

// beforeRead runs before the reader waits for more bytes: the replies
// gathered go, and the read deadline becomes the idle one between
// commands, the command's once one has begun.
func (s *Server) beforeRead(rc *respConn, begun bool, midCommand *bool) error {
	s.ungate(rc)
	s.turns.leave(rc) // a long command's turn is not held while it waits
	if err := s.respFlush(rc); err != nil {
		return err
	}
	if s.cfg.Context.Err() != nil {
		return io.EOF // shutting down: every command read is answered
	}
	s.respCount(rc)
	now := time.Now()
	switch {
	case !begun:
		*midCommand = false
		rc.cn.Touch()
		s.outRelease(rc)
		rc.setReadDeadline(now, s.cfg.IdleTimeout)
	case !*midCommand:
		*midCommand = true
		rc.readFor = 0 // a command's time runs from its first bytes: set it now
		rc.setReadDeadline(now, s.cfg.FrameTimeout)
	}
	if s.cfg.Context.Err() != nil { // shutdown may have set its deadline before this one
		return io.EOF
	}
	return nil
}

// respCount adds the connection's counts to the node's.
func (s *Server) respCount(rc *respConn) {
	c := &rc.counts
	if c.commands > 0 {
		s.c.add(cCommands, c.commands)
	}
	if c.asked > 0 {
		s.c.add(cHasQueries, c.asked)
		s.c.add(cHasHits, c.found)
	}
	if c.added > 0 {
		s.c.add(cAdds, c.added)
		s.c.add(cAddsNew, c.addedNew)
	}
	*c = struct{ commands, asked, found, added, addedNew uint64 }{}
}

// respFlush writes the replies gathered, once the adds they acknowledge
// are on disk (--fsync always).
func (s *Server) respFlush(rc *respConn) error {
	s.ungate(rc) // no client waits on another's write
	if err := s.respWait(rc); err != nil {
		return err
	}
	if len(rc.out) == 0 {
		return nil
	}
	if now := time.Now(); refresh(rc.writeSet, now, s.cfg.FrameTimeout) {
		rc.writeSet = now
		rc.cn.C.SetWriteDeadline(now.Add(s.cfg.FrameTimeout))
	}
	_, err := rc.cn.C.Write(rc.out)
	rc.out = rc.out[:0]
	if rc.outBuf != nil && cap(rc.out) != cap(rc.outBuf) { // grown on the heap past it: back to it
		rc.out = rc.outBuf[:0]
	}
	return err
}

// respWait waits until the adds the replies gathered acknowledge are on
// disk. If the data directory could not be written, their replies become
// MISCONF errors; any other failure (the node stopping) is returned.
func (s *Server) respWait(rc *respConn) error {
	err := rc.waits.Wait()
	if errors.Is(err, store.ErrUnwritable) {
		s.unkept(rc, err)
		err = nil
	}
	rc.acks = rc.acks[:0]
	return err
}

// setReadDeadline makes the read deadline now+timeout, unless it is that
// already, give or take refresh's slack.
func (rc *respConn) setReadDeadline(now time.Time, timeout time.Duration) {
	if rc.readFor == timeout && !refresh(rc.readSet, now, timeout) {
		return
	}
	rc.readSet, rc.readFor = now, timeout
	rc.cn.C.SetReadDeadline(now.Add(timeout))
}

// respFailed counts why a connection's next command could not be read,
// and answers a protocol error as Redis does before it closes.
func (s *Server) respFailed(rc *respConn, err error, midCommand bool) {
	var pe *resp.ProtocolError
	var ne net.Error
	switch {
	case errors.As(err, &pe):
		s.c.inc(cProtocolErrors)
		rc.out = resp.AppendError(rc.out, "ERR "+pe.Error())
		s.respLastWord(rc)
	case errors.Is(err, resp.ErrNoMemory):
		s.c.inc(cNoMemory)
		rc.out = resp.AppendError(rc.out, "ERR "+errRESPNoMemory)
		s.respLastWord(rc)
	case s.cfg.Context.Err() != nil:
	case errors.As(err, &ne) && ne.Timeout():
		if midCommand {
			s.c.inc(cFrameTimeouts)
		} else {
			s.c.inc(cIdleTimeouts)
		}
	}
}

// respLastWord writes the replies gathered, an error last, and lingers
// (lingerClose) so that the client reads them.
func (s *Server) respLastWord(rc *respConn) {
	if s.respFlush(rc) == nil {
		conns.LingerClose(rc.cn.C)
	}
}

// errRESPNoMemory closes a connection whose command needs more buffer
// memory than the budget has left.
const errRESPNoMemory = "no buffer memory left for this command (--max-buffer-bytes): try again, or send smaller commands"

// respPassword reports whether p is one of the configured passwords, in
// time that does not depend on how much of one it matches.
func (s *Server) respPassword(p []byte) bool {
	ok := 0
	for _, want := range s.cfg.Passwords {
		ok |= subtle.ConstantTimeCompare(p, []byte(want))
	}
	return ok == 1
}
