package node

import (
	"errors"
	"io"
	"net/netip"

	"github.com/rmbd/rmbd/access"
	"github.com/rmbd/rmbd/auth"
	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/store"
	"github.com/rmbd/rmbd/wire"
)

// Dispatch. Every frame, from a datagram or a stream, sealed or not,
// named or not, is served by one table from frame type to handler. A
// handler returns its reply as a value; the datagram and stream loops
// (udp.go, tcp.go) decide how it leaves.

// request is one frame to serve: what it is, who sent it, and how.
type request struct {
	frame  []byte
	from   netip.AddrPort
	w      *worker
	tcp    bool
	sealed bool   // came sealed with the cluster key: from a member
	peer   uint64 // when sealed, its sender's id: the answer is sealed for it
	named  bool   // addressed to a filter by name (else the default)
	name   []byte // the filter's name, when named
	seg    uint64 // the segment addressed, when named
	size   int    // a datagram's size (0: a stream's frame): its reply's budget
}

// reply is what serving a frame gives back.
type reply struct {
	frame  []byte                // the answer, built in the worker's buffer; nil: none
	wait   store.Wait            // the answer leaves once these adds are on disk
	hangUp bool                  // close the stream after the answer
	pull   func(io.Writer) error // a stream of frames answering a pull (TCP only)
}

// handler serves one frame type.
type handler func(n *Node, q *request) reply

// dispatcher is the handler of each frame type; nil: not served.
type dispatcher [256]handler

func newDispatcher() dispatcher {
	var d dispatcher
	for t, h := range map[wire.Type]handler{
		wire.TypeAdd: (*Node).classicAdd, wire.TypeHas: (*Node).classicHas,
		wire.TypeSync: (*Node).classicSync, wire.TypePeer: (*Node).classicPeer, wire.TypeAck: (*Node).classicAck,
		wire.TypeAddBatch: (*Node).batch, wire.TypeHasBatch: (*Node).batch,
		wire.TypeRowSync: (*Node).rowSync, wire.TypeSparseSync: (*Node).rowSync, wire.TypeRowAck: (*Node).rowAck, wire.TypePull: (*Node).pull,
		wire.TypePing: (*Node).ping, wire.TypeStatsReq: (*Node).statsRequest, wire.TypeMembersReq: (*Node).membersRequest,
		wire.TypePeerRequest: (*Node).peerRequest, wire.TypeFilterReq: (*Node).filterRequest,
		wire.TypeDumpReq: (*Node).dumpRequest, wire.TypeLoadReq: (*Node).loadRequest, wire.TypePeersReq: (*Node).peersRequest,
		wire.TypeExpireReq: (*Node).expireRequest, wire.TypeCatalog: (*Node).catalogDatagram,
		wire.TypeSealed: (*Node).sealed, wire.TypeNamed: (*Node).named, wire.TypeError: (*Node).errorFrame,
	} {
		d[t] = h
	}
	return d
}

// worker is what one goroutine serving frames (a datagram reader or a
// stream) reuses from frame to frame: its counter shard, its buffers and
// the gossip frames an ack lets out.
type worker struct {
	c       *counter.Shard
	reader  int // the datagram reader, whose socket replies leave from
	buf     []byte
	sealBuf []byte
	out     gossip.Outbox
	sc      store.Scratch
	keys    [][]byte
	fwd     []byte  // a request forwarded to a member (place.go)
	q       request // the frame in hand
}

// dispatch serves q by its frame's type.
func (n *Node) dispatch(q *request) reply {
	if len(q.frame) == 0 {
		return n.bad(q)
	}
	if !n.policy.Open(q.from.Addr()) {
		return n.protectedRefusal(q)
	}
	t := wire.Type(q.frame[0])
	if n.keyed() && nodeFrame(t) && !q.sealed {
		q.w.c.Drop(counter.Unauthenticated) // a node of this cluster would have sealed it
		return n.refuse(q, wire.CodeUnsealed, "this node has a cluster key: peer requests must be sealed with it (rmbd-cli --cluster-key-file)")
	}
	h := n.serve[t]
	if h == nil {
		q.w.c.Drop(counter.Unsupported)
		return reply{}
	}
	return h(n, q)
}

// protectedRefusal answers a request from beyond loopback to a node in
// protected mode: how to configure the node, and a hang-up. Classic
// frames, which have no error frame, get nothing.
func (n *Node) protectedRefusal(q *request) reply {
	q.w.c.Drop(counter.ProtectedRefused)
	r := n.refuse(q, wire.CodeProtected, access.ProtectedMessage)
	r.hangUp = true
	return r
}

// bad counts a frame that did not decode; it gets no answer.
func (n *Node) bad(q *request) reply {
	q.w.c.Drop(counter.BadFrames)
	return reply{}
}

// may reports whether q's source may do op, counting a refusal.
func (n *Node) may(q *request, op access.Op) bool {
	if n.policy.Allows(op, q.from.Addr(), q.sealed) {
		return true
	}
	q.w.c.Drop(counter.Forbidden)
	return false
}

// refuse answers q, an extended request, with an error frame; other
// frames get no answer.
func (n *Node) refuse(q *request, code uint16, msg string) reply {
	id, ok := wire.RequestID(q.frame)
	if !ok {
		return reply{}
	}
	b, _ := wire.AppendError(q.w.buf[:0], wire.ErrorFrame{ReqID: id, Code: code, Msg: []byte(msg)})
	return reply{frame: b}
}

// refuseClassic refuses a classic request: over UDP in silence (it has
// no error reply), over TCP with an error frame, after which the stream
// is closed — a classic client would misread anything that followed.
func (n *Node) refuseClassic(q *request, msg string) reply {
	if !q.tcp {
		return reply{}
	}
	b, _ := wire.AppendError(q.w.buf[:0], wire.ErrorFrame{Code: wire.CodeForbidden, Msg: []byte(msg)})
	return reply{frame: b, hangUp: true}
}

// named serves a frame addressed to a filter by name (and segment): its
// inner frame, for that filter. A name no filter can have is refused with
// an error frame, so that the client hears why.
func (n *Node) named(q *request) reply {
	nf, err := wire.DecodeNamed(q.frame)
	if err != nil {
		inner, ok := wire.NamedInner(q.frame)
		if !ok {
			return n.bad(q)
		}
		q.w.c.Drop(counter.BadFrames)
		q.frame = inner
		return n.refuse(q, wire.CodeRefused, registry.ErrName.Error())
	}
	q.frame, q.named, q.name, q.seg = nf.Inner, true, nf.Name, nf.Segment
	return n.dispatch(q)
}

// sealed opens a sealed frame and serves its inner frame as coming from
// a member; the answer goes back sealed.
func (n *Node) sealed(q *request) reply {
	if q.sealed { // sealed twice: no node sends that
		return n.bad(q)
	}
	s, err := n.open(q.frame)
	if errors.Is(err, auth.ErrReceiver) {
		q.w.c.Drop(counter.WrongReceiver)
		budget := len(q.frame) // a datagram's source may be forged
		if q.tcp {
			budget = wire.MaxFrame
		}
		return reply{frame: n.hint(q.w.buf[:0], s, budget)}
	}
	if err != nil {
		q.w.c.Drop(sealFailure(err))
		n.clockWarning(q.from, err)
		return n.sealRefused(q, err)
	}
	if !q.tcp {
		n.learnID(q.from, s.Sender) // nodes send datagrams from their data address
	}
	q.frame, q.sealed, q.peer = s.Inner, true, s.Sender
	r := n.dispatch(q)
	if len(r.frame) > 0 {
		q.w.sealBuf = n.seal(q.w.sealBuf[:0], r.frame, s.Sender)
		r.frame = append(r.frame[:0], q.w.sealBuf...) // replies are built in the worker's buffer
	}
	return r
}

// errorFrame takes an error frame a node sent this one: a sealed one (a
// hint: opening it taught its sender's id) needs nothing more; others
// are not served.
func (n *Node) errorFrame(q *request) reply {
	if !q.sealed {
		q.w.c.Drop(counter.Unsupported)
	}
	return reply{}
}
