package node

import (
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/rmbd/rmbd/resp"
)

// The RESP listener (Config.RESPListen): Redis clients speak to the node's
// filters with RedisBloom's BF.* commands, a filter's name as the key.
// Its connections share the TCP table and its bounds (conns.go): the
// per-source and overall limits, the idle and mid-command timeouts and the
// buffer budget. Commands are served in order and their replies gathered
// until the connection has nothing more to read, then written at once:
// pipelining costs one write per read.

// respFlushAt is how many reply bytes gather before they are written even
// with commands still to read.
const respFlushAt = 64 << 10

// respPreAuth bounds a command from a client that has not yet
// authenticated, as Redis does: a handful of short arguments.
var respPreAuth = resp.Limits{MaxArgs: 10, MaxBulk: 16 << 10, MaxInline: 16 << 10, MaxCommand: 64 << 10}

// respConn is one RESP client.
type respConn struct {
	cn     *conn
	id     int64
	proto  int  // 2 or 3 (HELLO)
	authed bool // no password is configured, or it gave one
	name   string
	out    []byte   // replies not yet written
	w      *worker  // scratch for adds with a data directory
	waits  logWaits // what out waits for (--fsync always)
	bits   []byte   // scratch: which keys an add changed
	quit   bool
	rd     *resp.Reader
	// The last command run and filter looked up, for the next command,
	// which is most often the same; and counts not yet added to the node's
	// (once per read, and at the end: the node's counters are shared by
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

// refresh reports whether a deadline of timeout, last set at set, is to
// be set again at now: a deadline is moved once it is stale by more than
// an eighth of its timeout (at most a second). On a busy connection a
// timer change per request is a measurable share of its CPU; a timeout
// that fires up to an eighth early costs nothing.
func refresh(set, now time.Time, timeout time.Duration) bool {
	return now.Sub(set) > min(timeout/8, time.Second)
}

// respLimits is cfg.RESPLimits with the defaults filled in.
func (c Config) respLimits() resp.Limits {
	l, d := c.RESPLimits, resp.DefaultLimits()
	if l.MaxArgs <= 0 {
		l.MaxArgs = d.MaxArgs
	}
	if l.MaxBulk <= 0 {
		l.MaxBulk = d.MaxBulk
	}
	if l.MaxInline <= 0 {
		l.MaxInline = d.MaxInline
	}
	if l.MaxCommand <= 0 {
		l.MaxCommand = min(d.MaxCommand, int(c.MaxBufferBytes/2))
	}
	return l
}

// RESPAddr is the address the RESP listener is bound to; invalid without
// one.
func (n *Node) RESPAddr() netip.AddrPort {
	if n.respLn == nil {
		return netip.AddrPort{}
	}
	a, _ := netip.ParseAddrPort(n.respLn.Addr().String())
	return a
}

// listenRESP binds the RESP listener, if one is configured.
func listenRESP(cfg Config) (net.Listener, error) {
	if cfg.RESPListen == "" {
		return nil, nil
	}
	var lc net.ListenConfig
	return lc.Listen(context.Background(), "tcp", cfg.RESPListen)
}

// serveRESP serves one RESP connection.
func (n *Node) serveRESP(cn *conn) {
	defer n.wg.Done()
	defer n.release(cn)
	rc := &respConn{cn: cn, id: n.respIDs.Add(1), proto: 2, authed: len(n.cfg.RESPPasswords) == 0,
		w: &worker{c: n.c, tcp: true}}
	lim := n.cfg.respLimits()
	loosened := rc.authed // the full limits from the start, or once authenticated
	if !loosened {
		lim = respPreAuth
	}
	rc.rd = resp.NewReader(cn.c, connReadBuf, lim)
	rc.rd.Borrow(n.bufs, connBusyBuf)
	defer rc.rd.Close()
	defer n.respCount(rc)
	midCommand := false
	rc.rd.BeforeRead(func(begun bool) error {
		if err := n.respFlush(rc); err != nil {
			return err
		}
		if n.ctx.Err() != nil {
			return io.EOF // shutting down: every command read is answered
		}
		n.respCount(rc)
		now := time.Now()
		switch {
		case !begun:
			midCommand = false
			cn.last.Store(now.UnixNano())
			if cap(rc.out) > respFlushAt {
				rc.out = nil
			}
			rc.setReadDeadline(now, n.cfg.IdleTimeout)
		case !midCommand:
			midCommand = true
			rc.readFor = 0 // a command's time runs from its first bytes: set it now
			rc.setReadDeadline(now, n.cfg.FrameTimeout)
		}
		if n.ctx.Err() != nil { // shutdown may have set its deadline before this one
			return io.EOF
		}
		return nil
	})
	for !rc.quit {
		cmd, err := rc.rd.Next()
		if err != nil {
			n.respFailed(rc, err, midCommand)
			return
		}
		rc.counts.commands++
		n.respCommand(rc, cmd.Args)
		if rc.authed && !loosened {
			loosened = true
			rc.rd.SetLimits(n.cfg.respLimits())
		}
		if len(rc.out) >= respFlushAt {
			if n.respFlush(rc) != nil {
				return
			}
		}
	}
	n.respFlush(rc)
}

// respCount adds the connection's counts to the node's.
func (n *Node) respCount(rc *respConn) {
	c := &rc.counts
	if c.commands > 0 {
		n.c.add(RESPCommands, c.commands)
	}
	if c.asked > 0 {
		n.c.add(HasQueries, c.asked)
		n.c.add(HasHits, c.found)
	}
	if c.added > 0 {
		n.c.add(Adds, c.added)
		n.c.add(AddsNew, c.addedNew)
	}
	*c = struct{ commands, asked, found, added, addedNew uint64 }{}
}

// respFlush writes the replies gathered, once the adds they acknowledge
// are on disk (--fsync always).
func (n *Node) respFlush(rc *respConn) error {
	if err := rc.waits.wait(); err != nil {
		return err
	}
	if len(rc.out) == 0 {
		return nil
	}
	if now := time.Now(); refresh(rc.writeSet, now, n.cfg.FrameTimeout) {
		rc.writeSet = now
		rc.cn.c.SetWriteDeadline(now.Add(n.cfg.FrameTimeout))
	}
	_, err := rc.cn.c.Write(rc.out)
	rc.out = rc.out[:0]
	return err
}

// setReadDeadline makes the read deadline now+timeout, unless it is that
// already, give or take refresh's slack.
func (rc *respConn) setReadDeadline(now time.Time, timeout time.Duration) {
	if rc.readFor == timeout && !refresh(rc.readSet, now, timeout) {
		return
	}
	rc.readSet, rc.readFor = now, timeout
	rc.cn.c.SetReadDeadline(now.Add(timeout))
}

// respFailed counts why a connection's next command could not be read,
// and answers a protocol error as Redis does before it closes.
func (n *Node) respFailed(rc *respConn, err error, midCommand bool) {
	var pe *resp.ProtocolError
	var ne net.Error
	switch {
	case errors.As(err, &pe):
		n.c.inc(RESPProtocolErrors)
		rc.out = resp.AppendError(rc.out, "ERR "+pe.Error())
		n.respLastWord(rc)
	case errors.Is(err, resp.ErrNoMemory):
		n.c.inc(TCPNoMemory)
		rc.out = resp.AppendError(rc.out, "ERR "+errRESPNoMemory)
		n.respLastWord(rc)
	case n.ctx.Err() != nil:
	case errors.As(err, &ne) && ne.Timeout():
		if midCommand {
			n.c.inc(TCPFrameTimeouts)
		} else {
			n.c.inc(TCPIdleTimeouts)
		}
	}
}

// respLastWord writes the replies gathered, an error last, and lingers
// (lingerClose) so that the client reads them.
func (n *Node) respLastWord(rc *respConn) {
	if n.respFlush(rc) == nil {
		lingerClose(rc.cn.c)
	}
}

// errRESPNoMemory closes a connection whose command needs more buffer
// memory than the budget has left.
const errRESPNoMemory = "no buffer memory left for this command (--max-buffer-bytes): try again, or send smaller commands"

// respPassword reports whether p is one of the configured passwords, in
// time that does not depend on how much of one it matches.
func (n *Node) respPassword(p []byte) bool {
	ok := 0
	for _, want := range n.cfg.RESPPasswords {
		ok |= subtle.ConstantTimeCompare(p, []byte(want))
	}
	return ok == 1
}
