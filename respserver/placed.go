package respserver

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/resp"
	"github.com/rmbd/rmbd/store"
	"github.com/rmbd/rmbd/wire"
)

// Filters placed on some members (BF.RESERVE … REPLICAS r, an rmbd
// extension): any member answers for one, held here or not. Their adds
// and asks go to the node as the binary protocol's batches would
// (Backend.Batch), which serves them here or forwards them to the owners
// — an add acknowledged once --write-quorum of them hold it — and the
// answer's bits become the reply. The node counts them, as it does
// binary batches. A filter on every member is served in place.

// placedFrame bounds the keys' bytes of one batch to the node, as the Go
// client bounds its batches over TCP; a batch carries at most
// wire.MaxBatchKeys keys, each at most wire.MaxKeyLen bytes.
const placedFrame = 64 << 10

// placed reports whether name's filter lives on some members only.
func (s *Server) placed(name []byte) bool {
	_, ok := s.reg.Route(name)
	return ok
}

// replicasOption reads REPLICAS's count, or returns the error to answer.
func replicasOption(v []byte) (int, string) {
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || n < 1 || n > registry.MaxReplicas {
		return 0, fmt.Sprintf("ERR bad replicas (1 to %d members)", registry.MaxReplicas)
	}
	return int(n), ""
}

// placedKeys adds (t wire.TypeAddBatch) or asks (wire.TypeHasBatch) keys
// of the placed filter name through the node, a batch at a time, and
// sets bit at+i of bits for each key i answered true. It returns the
// error to answer, or "": keys before it may have been added.
func (s *Server) placedKeys(rc *respConn, t wire.Type, name []byte, keys [][]byte, bits []byte, at int) string {
	flags := uint8(0)
	if t == wire.TypeAddBatch {
		flags = wire.FlagAck // answered once the owners have them
	}
	for len(keys) > 0 {
		n, size := 0, 0
		for ; n < len(keys) && n < wire.MaxBatchKeys; n++ {
			k := len(keys[n])
			if k > wire.MaxKeyLen {
				return fmt.Sprintf("ERR an item of %d bytes: a filter on some members takes items of at most %d bytes", k, wire.MaxKeyLen)
			}
			if n > 0 && size+wire.KeyOverhead+k > placedFrame {
				break
			}
			size += wire.KeyOverhead + k
		}
		frame, err := wire.AppendBatch(rc.frame[:0], t, uint32(at+1), flags, keys[:n])
		if err != nil {
			return "ERR " + err.Error()
		}
		rc.frame = frame
		var out []byte
		turn := rc.turn // a long command's: not held while the owners answer
		s.outside(rc, func() {
			s.turns.leave(rc)
			out, err = s.b.Batch(name, frame, rc.cn.From.Addr(), rc.answer[:0]) // it may wait on the owners and the disk
		})
		if turn {
			s.takeTurn(rc)
		}
		rc.answer = out[:0]
		switch {
		case errors.Is(err, store.ErrUnwritable):
			return misconf(err)
		case err != nil:
			return "ERR " + err.Error()
		}
		if msg := placedAnswer(out, t, n, bits, at); msg != "" {
			return msg
		}
		keys, at = keys[n:], at+n
	}
	return ""
}

// placedAnswer sets bit at+i of bits for each of the n keys the answer
// frame says true of, or returns the error to answer: the node's
// refusal, in the words RESP clients know where there are some.
func placedAnswer(frame []byte, t wire.Type, n int, bits []byte, at int) string {
	if len(frame) > 0 && wire.Type(frame[0]) == wire.TypeError {
		e, err := wire.DecodeError(frame)
		if err != nil {
			return "ERR the node's answer did not decode: " + err.Error()
		}
		msg := string(e.Msg)
		switch {
		case e.Code == wire.CodeUnwritable:
			return "MISCONF " + msg
		case e.Code == wire.CodeForbidden:
			return "NOPERM " + msg
		case e.Code == wire.CodeRefused && strings.Contains(msg, registry.ErrNonScaling.Error()):
			return "ERR " + registry.ErrNonScaling.Error() // RedisBloom's words
		case msg == "":
			return "ERR " + wire.CodeName(e.Code)
		}
		return "ERR " + msg
	}
	want := wire.TypeHasResult
	if t == wire.TypeAddBatch {
		want = wire.TypeAddResult
	}
	res, err := wire.DecodeResult(frame)
	if err != nil || res.Type != want || res.Count != n {
		return fmt.Sprintf("ERR the node's answer to %d keys was not a %v of them (%v)", n, want, err)
	}
	for i := range n {
		if res.Get(i) {
			j := at + i
			bits[j/8] |= 1 << (j % 8)
		}
	}
	return ""
}

// placedAdded adds keys to the placed filter name and appends the
// answers, as respAdded does.
func (s *Server) placedAdded(rc *respConn, name []byte, keys [][]byte, multi bool) {
	bits := rc.scratchBits(len(keys))
	if msg := s.placedKeys(rc, wire.TypeAddBatch, name, keys, bits, 0); msg != "" {
		s.respErr(rc, msg)
		return
	}
	s.bools(rc, bits, len(keys), multi)
}

// placedExists asks keys of the placed filter name and appends the
// answers, as bfExists does.
func (s *Server) placedExists(rc *respConn, name []byte, keys [][]byte, multi bool) {
	bits := rc.scratchBits(len(keys))
	if msg := s.placedKeys(rc, wire.TypeHasBatch, name, keys, bits, 0); msg != "" {
		s.respErr(rc, msg)
		return
	}
	s.bools(rc, bits, len(keys), multi)
}

// bools appends n answers, bits[i/8]>>(i%8)&1 each: an array, or one
// boolean.
func (s *Server) bools(rc *respConn, bits []byte, n int, multi bool) {
	if !multi {
		rc.out = resp.AppendBool(rc.out, rc.proto, bits[0]&1 != 0)
		return
	}
	rc.out = resp.AppendArray(rc.out, n)
	for i := range n {
		rc.out = resp.AppendBool(rc.out, rc.proto, bits[i/8]&(1<<(i%8)) != 0)
	}
}

// scratchBits returns n bits of rc's scratch, cleared.
func (rc *respConn) scratchBits(n int) []byte {
	need := (n + 7) / 8
	if cap(rc.bits) < need {
		rc.bits = make([]byte, need)
	}
	bits := rc.bits[:need]
	clear(bits)
	return bits
}

// placedLong serves the pieces of a BF.MADD, BF.INSERT (add) or
// BF.MEXISTS of a placed filter: each piece's keys go to the node as they
// come, their answers kept as one bit each, and the reply is written
// once the last piece is read.
func (s *Server) placedLong(rc *respConn, t wire.Type, name []byte, first [][]byte, more int) {
	n := len(first) + more
	res, ok := s.borrowBits(rc, n)
	if !ok {
		return
	}
	defer s.cfg.Buffers.Put(res)
	name = slices.Clone(name) // the first piece's buffer is read over by the next
	at, msg := 0, ""
	read := s.eachPiece(rc, first, more, func(items [][]byte) {
		if msg == "" {
			msg = s.placedKeys(rc, t, name, items, res, at)
		}
		at += len(items)
	})
	switch {
	case !read:
	case msg != "":
		s.respErr(rc, msg)
	default:
		s.respBools(rc, res, n)
	}
}

// where is what BF.INFO adds for a filter placed on some members: its
// replicas, its owners, and how this member holds it.
type where struct {
	replicas int
	owners   []string
	here     string
}

// placement describes where name's filter lives, if it is placed.
func (s *Server) placement(name []byte) (where, bool) {
	rt, ok := s.reg.Route(name)
	if !ok {
		return where{}, false
	}
	w := where{replicas: rt.Replicas, owners: rt.Owners(), here: "ready"}
	switch f := s.reg.Lookup(name).Winner(); {
	case f == nil:
		w.here = "not held"
	case f.Filling():
		w.here = "filling"
	case f.Unowned():
		w.here = "leaving"
	}
	return w, true
}

// placedDesc describes a placed filter this member does not hold, from
// the catalog: its items are its owners' to count.
func (s *Server) placedDesc(name []byte) (filterDesc, bool) {
	d, ok := s.reg.DescribeName(string(name))
	if !ok || d.Here != wire.HeldNot {
		return filterDesc{}, false
	}
	return filterDesc{versions: int(d.Conflicts) + 1, stages: 1, capacity: d.Capacity, bytes: d.FP.SizeBytes(),
		expansion: d.Expansion}, true
}

// placedNames returns the names of the filters placed on other members,
// which this member knows from the catalog alone.
func (s *Server) placedNames() []string {
	var out []string
	for _, e := range s.reg.Entries() {
		if name := []byte(e.Name); len(s.reg.Lookup(name)) == 0 && s.placed(name) {
			out = append(out, e.Name)
		}
	}
	return out
}
