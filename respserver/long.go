package respserver

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/resp"
	"github.com/rmbd/rmbd/store"
	"github.com/rmbd/rmbd/wire"
)

// Long commands. A command of more arguments than a piece holds
// (resp.Limits.PieceArgs, PieceBytes) reaches the server in pieces, so
// that a BF.MADD of a million items holds a piece of them at a time,
// never the million. BF.MADD, BF.INSERT, BF.MEXISTS and EXISTS serve one
// piece after another: each piece's items are added or asked, their
// answers kept as one bit each (borrowed from --max-buffer-bytes, as the
// pieces are), and other connections' commands run between pieces. The
// pieces of every long command in progress take turns on all cores but
// one (longTurns): however many there are, a core is left for the other
// commands and for the runtime's network poller, which, while every core
// has goroutines to run, looks for ready connections only every 10 ms. The
// reply is written once the last piece is read, in slices of respFlushAt
// bytes: a client that sends its whole command before it reads the reply,
// as most do, is never made to wait on it mid-command. Any other command
// in pieces is refused (tooLong) and its pieces skipped.
//
// A long command whose stream breaks (a protocol error, a timeout) has
// had its earlier pieces' adds made: adds are idempotent and a filter
// only grows, so the client's retry of the command adds the same bits.

// longTurns is the turns of the long commands: a connection parses and
// serves its pieces holding one, passes it on after each piece (FIFO:
// long commands take turns piece by piece), and lets go of it before it
// waits for more bytes or writes its reply.
type longTurns chan struct{}

func newLongTurns() longTurns {
	return make(longTurns, max(1, runtime.GOMAXPROCS(0)-1))
}

// take waits for a turn for rc, unless it holds one.
func (t longTurns) take(rc *respConn) {
	if !rc.turn {
		t <- struct{}{}
		rc.turn = true
	}
}

// leave gives rc's turn back, if it holds one.
func (t longTurns) leave(rc *respConn) {
	if rc.turn {
		<-t
		rc.turn = false
	}
}

// pass lets the next long command waiting have a turn before rc's next
// piece.
func (t longTurns) pass(rc *respConn) {
	t.leave(rc)
	t.take(rc)
}

// tooLong is the error for a command, other than the long ones, that
// comes in more than one piece.
func (s *Server) tooLong(name string) string {
	lim := s.cfg.Limits
	args, bytes := lim.PieceArgs, lim.PieceBytes
	if args <= 0 {
		args = resp.DefaultPieceArgs
	}
	if bytes <= 0 {
		bytes = resp.DefaultPieceBytes
	}
	return fmt.Sprintf("ERR '%s' command too long: only BF.MADD, BF.INSERT, BF.MEXISTS and EXISTS take more than %d arguments or %d KiB", name, args, bytes>>10)
}

// eachPiece calls f with first, then with each further piece of the
// command in hand (more arguments to come), reading and serving each
// holding a turn. A piece that cannot be read ends it, false, the error
// in rc.err for serve.
func (s *Server) eachPiece(rc *respConn, first [][]byte, more int, f func(items [][]byte)) bool {
	s.takeTurn(rc)
	defer s.turns.leave(rc)
	items := first
	for {
		if len(items) > 0 {
			f(items)
		}
		if more == 0 {
			return true
		}
		s.ungate(rc)
		s.turns.pass(rc)
		p, err := rc.rd.Rest() // lets go of the turn before it waits (beforeRead)
		s.takeTurn(rc)
		if err != nil {
			rc.err = err
			return false
		}
		items, more = p.Args, p.More
	}
}

// borrowBits borrows n bits, cleared, from the buffer budget; on refusal
// rc.err says so.
func (s *Server) borrowBits(rc *respConn, n int) ([]byte, bool) {
	size := (n + 7) / 8
	b, ok := s.cfg.Buffers.Get(size)
	if !ok {
		rc.err = resp.ErrNoMemory
		return nil, false
	}
	b = b[:size]
	clear(b)
	return b, true
}

// bfAddLong serves a BF.MADD in pieces.
func (s *Server) bfAddLong(rc *respConn, cmd resp.Command) {
	if s.placed(cmd.Args[1]) {
		s.placedLong(rc, wire.TypeAddBatch, cmd.Args[1], cmd.Args[2:], cmd.More)
		return
	}
	f, err := s.addTarget(rc, cmd.Args[1])
	if err != nil {
		s.respAddErr(rc, err)
		return
	}
	s.respAddedLong(rc, f, cmd.Args[2:], cmd.More)
}

// bfInsertLong serves a BF.INSERT in pieces: its options are in the
// first.
func (s *Server) bfInsertLong(rc *respConn, cmd resp.Command) {
	f, items, ok := s.insertTarget(rc, cmd.Args, len(cmd.Args)+cmd.More)
	switch {
	case !ok:
	case f == nil:
		s.placedLong(rc, wire.TypeAddBatch, cmd.Args[1], cmd.Args[items:], cmd.More)
	default:
		s.respAddedLong(rc, f, cmd.Args[items:], cmd.More)
	}
}

// respAddedLong adds first and the pieces that follow to f, and answers
// an array of whether each add changed the filter.
func (s *Server) respAddedLong(rc *respConn, f *registry.Filter, first [][]byte, more int) {
	n := len(first) + more
	res, ok := s.borrowBits(rc, n)
	if !ok {
		return
	}
	defer s.cfg.Buffers.Put(res)
	at := 0
	var addErr error
	read := s.eachPiece(rc, first, more, func(items [][]byte) {
		if addErr == nil {
			var bits []byte
			if bits, addErr = s.respAdd(rc, f, items); addErr == nil {
				copyBits(res, at, bits, len(items))
			}
		}
		at += len(items)
	})
	switch {
	case !read:
	case addErr != nil:
		s.respAddErr(rc, addErr)
	default:
		// The disk first: the reply goes out in slices, and a slice sent
		// cannot be taken back.
		s.ungate(rc) // no client waits on another's disk
		err := rc.waits.Wait()
		switch {
		case errors.Is(err, store.ErrUnwritable):
			s.unkept(rc, err)
			s.respErr(rc, misconf(err))
		case err != nil:
			rc.err = err
		default:
			s.respBools(rc, res, n)
		}
	}
}

// bfExistsLong serves a BF.MEXISTS in pieces.
func (s *Server) bfExistsLong(rc *respConn, cmd resp.Command) {
	if s.placed(cmd.Args[1]) {
		s.placedLong(rc, wire.TypeHasBatch, cmd.Args[1], cmd.Args[2:], cmd.More)
		return
	}
	first := cmd.Args[2:]
	n := len(first) + cmd.More
	res, ok := s.borrowBits(rc, n)
	if !ok {
		return
	}
	defer s.cfg.Buffers.Put(res)
	vs := s.lookup(rc, cmd.Args[1])
	at, hits := 0, 0
	read := s.eachPiece(rc, first, cmd.More, func(items [][]byte) {
		for _, k := range items {
			if vs.Has(k) {
				res[at/8] |= 1 << (at % 8)
				hits++
			}
			at++
		}
	})
	rc.counts.asked += uint64(at)
	rc.counts.found += uint64(hits)
	if read {
		s.respBools(rc, res, n)
	}
}

// respExistsLong serves an EXISTS in pieces.
func (s *Server) respExistsLong(rc *respConn, cmd resp.Command) {
	count := 0
	if s.eachPiece(rc, cmd.Args[1:], cmd.More, func(names [][]byte) {
		for _, k := range names {
			if s.respExistsName(k) {
				count++
			}
		}
	}) {
		rc.out = resp.AppendInt(rc.out, int64(count))
	}
}

// respBools answers an array of n booleans, bits[i/8]>>(i%8)&1 each,
// written out every respFlushAt bytes: the reply of a long command is
// never held whole. Each slice is made holding a turn, and written
// without.
func (s *Server) respBools(rc *respConn, bits []byte, n int) {
	rc.out = resp.AppendArray(rc.out, n)
	for i := 0; i < n; {
		s.takeTurn(rc)
		for ; i < n && len(rc.out) < respFlushAt; i++ {
			rc.out = resp.AppendBool(rc.out, rc.proto, bits[i/8]&(1<<(i%8)) != 0)
		}
		s.turns.leave(rc)
		if i < n {
			if err := s.respFlush(rc); err != nil {
				rc.err = err
				return
			}
		}
	}
}

// copyBits copies n bits from src, from bit 0, to dst from bit at.
func copyBits(dst []byte, at int, src []byte, n int) {
	for i := range n {
		if src[i/8]&(1<<(i%8)) != 0 {
			j := at + i
			dst[j/8] |= 1 << (j % 8)
		}
	}
}
