package sim

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/wire"
)

// The client: a station on the network's loopback (so an admin, as an
// operator's tool on the node's host is) sending the same frames
// rmbd-cli and the Go client send, and recording what was answered.

// clientAddr is where the client's requests come from.
var clientAddr = netip.MustParseAddrPort("127.0.1.1:9000")

// maxKeysPerAsk keeps a has batch, and its answer, within one datagram.
const maxKeysPerAsk = 40

// request is one request awaiting its answer.
type request struct {
	op     Op
	keys   [][]byte
	sentAt time.Duration
	// deadline: an expire's, by the simulation's clock.
	deadline time.Time
	// sentStep and acked, in a placement history: the step it was sent
	// in, and for a has the batch it asks.
	sentStep int
	acked    *placeAck
	// answered by the network's handler:
	done  bool
	bits  []byte // add and has results
	err   *wire.ErrorFrame
	other string // an answer of an unexpected kind
}

// client sends requests and matches answers by request id.
type client struct {
	c       *cluster
	next    uint32
	pending map[uint32]*request
	// onAnswer is told of each request answered, as it is.
	onAnswer func(*request)
}

func newClient(c *cluster, onAnswer func(*request)) *client {
	cl := &client{c: c, pending: map[uint32]*request{}, onAnswer: onAnswer}
	c.nw.Handle(clientAddr, cl.receive)
	return cl
}

// send sends r's frame to member i.
func (cl *client) send(r *request) error {
	cl.next++
	id := cl.next
	var inner []byte
	var err error
	switch r.op.Kind {
	case OpAdd, OpAddNoAck:
		flags := wire.FlagAck
		if r.op.Kind == OpAddNoAck {
			flags = 0
		}
		inner, err = wire.AppendBatch(nil, wire.TypeAddBatch, id, flags, r.keys)
	case OpHas:
		inner, err = wire.AppendBatch(nil, wire.TypeHasBatch, id, 0, r.keys)
	case OpCreate: // padded, as the client pads them: the answer is larger than the request
		inner, err = wire.AppendFilterRequest(nil, wire.FilterRequest{ReqID: id, Op: wire.FilterOpCreate,
			Name: []byte(r.op.Filter), Layout: filter.Blocked, Capacity: r.op.Capacity, FPRate: FPRate, Pad: wire.MaxDatagram,
			Window: uint64(r.op.Window.Milliseconds()), Slices: uint16(r.op.Slices), Growth: r.op.Growth, Replicas: r.op.Replicas})
	case OpDrop:
		inner, err = wire.AppendFilterRequest(nil, wire.FilterRequest{ReqID: id, Op: wire.FilterOpDrop,
			Name: []byte(r.op.Filter), Pad: wire.MaxDatagram})
	case OpExpire:
		inner, err = wire.AppendExpireRequest(nil, wire.ExpireRequest{ReqID: id, Op: wire.ExpireSet,
			Deadline: r.deadline.UnixMilli(), Name: []byte(r.op.Filter), Pad: wire.MaxDatagram})
	}
	if err != nil {
		return err
	}
	frame := inner
	if r.op.Filter != "" && (r.op.Kind == OpAdd || r.op.Kind == OpAddNoAck || r.op.Kind == OpHas) {
		if frame, err = wire.AppendNamed(nil, r.op.Filter, inner); err != nil {
			return err
		}
	}
	r.sentAt = cl.c.elapsed()
	if r.op.Kind != OpAddNoAck {
		cl.pending[id] = r
	}
	cl.c.nw.Send(clientAddr, cl.c.members[r.op.Node].addr, frame)
	return nil
}

// receive takes an answer, on the goroutine that delivers.
func (cl *client) receive(_ netip.AddrPort, frame []byte) {
	if len(frame) > 0 && wire.Type(frame[0]) == wire.TypeNamed {
		n, err := wire.DecodeNamed(frame)
		if err != nil {
			return
		}
		frame = n.Inner
	}
	var a answer
	switch wire.Type(frame[0]) {
	case wire.TypeAddResult, wire.TypeHasResult:
		res, err := wire.DecodeResult(frame)
		if err != nil {
			return
		}
		a.id, a.bits, a.count = res.ReqID, append([]byte(nil), res.Bits...), res.Count
	case wire.TypeError:
		e, err := wire.DecodeError(frame)
		if err != nil {
			return
		}
		e.Msg = append([]byte(nil), e.Msg...)
		a.id, a.err = e.ReqID, &e
	case wire.TypeFilters:
		fs, err := wire.DecodeFilters(frame)
		if err != nil {
			return
		}
		a.id = fs.ReqID
	case wire.TypeExpiry:
		x, err := wire.DecodeExpiry(frame)
		if err != nil {
			return
		}
		a.id = x.ReqID
	default:
		return
	}
	r := cl.pending[a.id]
	if r == nil || r.done {
		return // a duplicate, or an answer to a request given up on
	}
	delete(cl.pending, a.id)
	r.done, r.bits, r.err = true, a.bits, a.err
	want := wire.TypeFilters
	switch r.op.Kind {
	case OpAdd:
		want = wire.TypeAddResult
	case OpHas:
		want = wire.TypeHasResult
	case OpExpire:
		want = wire.TypeExpiry
	}
	if t := wire.Type(frame[0]); t != want && t != wire.TypeError {
		r.other = fmt.Sprintf("frame type %#x", t)
	} else if a.bits != nil && a.count != len(r.keys) {
		r.other = fmt.Sprintf("%d results for %d keys", a.count, len(r.keys))
	}
	cl.onAnswer(r)
}

// answer is what a reply frame says.
type answer struct {
	id    uint32
	bits  []byte
	count int
	err   *wire.ErrorFrame
}

// forget gives up on every request still waiting: their members died
// or the network lost them.
func (cl *client) forget() { clear(cl.pending) }

// present reports whether key i of a has result is present.
func present(bits []byte, i int) bool { return bits[i/8]&(1<<(i%8)) != 0 }
