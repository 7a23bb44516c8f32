package respserver

import (
	"encoding/binary"
	"fmt"

	"github.com/rmbd/rmbd/resp"
)

// Transactions: MULTI, EXEC and DISCARD as Redis does them on one node.
// After MULTI a connection's commands are checked (known, arity,
// permission) and queued, answered +QUEUED; one refused while queuing is
// answered its error and dooms the transaction, whose EXEC then answers
// EXECABORT and runs nothing. EXEC runs the queued commands in order and
// answers an array of their replies, errors included, with no other RESP
// client's command between them: every connection runs its commands
// holding the server's gate for reading, EXEC holds it for writing. (Adds
// over the binary protocol and rows merged from members are not RESP
// commands and may land meanwhile; filters only grow, so what EXEC's
// commands see is still a state the filter was in or went through.)
// WATCH is refused: it guards keys against change, and a filter changes
// with every add anywhere in the cluster.
//
// A connection holds the gate only while it runs commands it has read,
// never while it waits to read or write, or for a long command's turn
// (lock order: turn, then gate), so a slow client never holds EXEC up.
//
// The queue is kept in one buffer borrowed from the buffer budget
// (--max-buffer-bytes) and bounded by the longest command a client may
// send (Limits.MaxCommand): a queued transaction costs what its commands
// would, each at least queuedCost, so that EXEC's reply, held whole, is
// bounded alike. Commands sent in pieces (a BF.MADD of more than
// Limits.PieceArgs items) are not queued, nor those whose replies are not
// bounded by their arguments (KEYS, SCAN, COMMAND, INFO, CONFIG) or that
// may wait on a throttle (AUTH, HELLO): Redis's "Command not allowed
// inside a transaction", which dooms it. QUIT runs at once.
//
// Within EXEC every command runs holding the gate for writing: a
// BF.RESERVE, an auto-creating add or a DEL in a transaction holds every
// RESP client while its filter's folder is made or removed, an add or
// ask of a filter placed on other members while its owners answer.

// txState is a connection's transaction: on after MULTI until EXEC or
// DISCARD.
type txState struct {
	on      bool
	aborted bool   // a command was refused while queuing
	n       int    // commands queued
	cost    int    // what they count for against the bound (queuedCost)
	buf     []byte // the commands: per command its argument count, then each argument's length and bytes (uvarints)
}

// enter takes the gate for reading for rc's commands, unless it holds it
// (or holds it for writing, running EXEC).
func (s *Server) enter(rc *respConn) {
	if !rc.gated && !rc.execing {
		s.gate.RLock()
		rc.gated = true
	}
}

// ungate lets go of the gate, if rc holds it.
func (s *Server) ungate(rc *respConn) {
	if rc.gated {
		rc.gated = false
		s.gate.RUnlock()
	}
}

// takeTurn takes a long command's turn, unless rc holds it, and the gate,
// letting go of the gate while it waits for the turn.
func (s *Server) takeTurn(rc *respConn) {
	if !rc.turn {
		s.ungate(rc)
		s.turns.take(rc)
	}
	s.enter(rc)
}

// outside runs f, which may wait (on the disk, on a filter another
// request opens, on a throttle), without the gate, and takes it again
// after: a slow step never holds EXEC, and every client behind it, up.
// Within EXEC, which holds the gate for writing, f runs holding it.
func (s *Server) outside(rc *respConn, f func()) {
	s.ungate(rc)
	f()
	s.enter(rc)
}

func (s *Server) respMulti(rc *respConn, _ [][]byte) {
	if rc.tx.on {
		s.respErr(rc, "ERR MULTI calls can not be nested")
		return
	}
	rc.tx.on = true
	respOK(rc)
}

func (s *Server) respDiscard(rc *respConn, _ [][]byte) {
	if !rc.tx.on {
		s.respErr(rc, "ERR DISCARD without MULTI")
		return
	}
	s.txEnd(rc)
	respOK(rc)
}

func (s *Server) respWatch(rc *respConn, _ [][]byte) {
	if rc.tx.on {
		s.respErr(rc, "ERR WATCH inside MULTI is not allowed")
		return
	}
	s.respErr(rc, "ERR WATCH is not supported: a filter changes with every add anywhere in the cluster, so no watch would hold; MULTI/EXEC without it runs its commands with no other client's between them")
}

// respUnwatch answers OK: nothing is ever watched.
func (s *Server) respUnwatch(rc *respConn, _ [][]byte) { respOK(rc) }

func (s *Server) respExec(rc *respConn, _ [][]byte) {
	tx := &rc.tx
	if !tx.on {
		s.respErr(rc, "ERR EXEC without MULTI")
		return
	}
	defer s.txEnd(rc)
	if tx.aborted {
		s.respErr(rc, "EXECABORT Transaction discarded because of previous errors.")
		return
	}
	s.ungate(rc)
	s.gate.Lock()
	rc.execing = true
	defer func() {
		rc.execing = false
		s.gate.Unlock()
	}()
	rc.out = resp.AppendArray(rc.out, tx.n)
	var args [][]byte
	for b := tx.buf; len(b) > 0; {
		args, b = decodeQueued(args[:0], b)
		if c := s.cmds.byName[lower(args[0])]; c != nil {
			c.run(s, rc, args)
		}
	}
}

// txRefuse answers a command refused while queuing and dooms the
// transaction.
func (s *Server) txRefuse(rc *respConn, msg string) {
	rc.tx.aborted = true
	s.respErr(rc, msg)
}

// queuedCost is the least a queued command counts for against the
// queue's bound: about the largest reply a command allowed in a
// transaction gives without items to answer (BF.INFO's, HELLO's), so that
// EXEC's reply is bounded by the queue's bound too.
const queuedCost = 256

// queue queues a command checked to run, or refuses it.
func (s *Server) queue(rc *respConn, args [][]byte) {
	tx := &rc.tx
	size := binary.MaxVarintLen64
	for _, a := range args {
		size += binary.MaxVarintLen64 + len(a)
	}
	need := len(tx.buf) + size
	if lim := s.cfg.Limits.OrDefaults().MaxCommand; tx.cost+max(size, queuedCost) > lim {
		s.txRefuse(rc, fmt.Sprintf("ERR transaction too long: its commands may take %d bytes in all (the longest command a client may send)", lim))
		return
	}
	if need > cap(tx.buf) {
		b, ok := s.cfg.Buffers.Get(max(need, 2*cap(tx.buf)))
		if !ok {
			s.c.inc(cNoMemory)
			s.txRefuse(rc, "ERR "+errRESPNoMemory)
			return
		}
		b = append(b, tx.buf...)
		s.cfg.Buffers.Put(tx.buf)
		tx.buf = b
	}
	tx.buf = binary.AppendUvarint(tx.buf, uint64(len(args)))
	for _, a := range args {
		tx.buf = binary.AppendUvarint(tx.buf, uint64(len(a)))
		tx.buf = append(tx.buf, a...)
	}
	tx.n++
	tx.cost += max(size, queuedCost)
	rc.out = append(rc.out, "+QUEUED\r\n"...)
}

// decodeQueued appends to args the next queued command's arguments,
// slices of b, and returns the rest of b. The queue is the connection's
// own making: it is well formed.
func decodeQueued(args [][]byte, b []byte) ([][]byte, []byte) {
	n, w := binary.Uvarint(b)
	b = b[w:]
	for range n {
		l, w := binary.Uvarint(b)
		args = append(args, b[w:w+int(l)])
		b = b[w+int(l):]
	}
	return args, b
}

// txEnd ends rc's transaction, if any, and gives its queue back.
func (s *Server) txEnd(rc *respConn) {
	if cap(rc.tx.buf) > 0 {
		s.cfg.Buffers.Put(rc.tx.buf)
	}
	rc.tx = txState{}
}

// lower returns name in lower case.
func lower(name []byte) string {
	b := make([]byte, len(name))
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	return string(b)
}
