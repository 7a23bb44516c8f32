package sim

import (
	"context"
	"time"

	"github.com/rmbd/rmbd/dump"
	"github.com/rmbd/rmbd/wire"
)

// Copies: a named filter dumped from one member and loaded into another
// under a new name, as rmbd-cli dump and load do. Every key the dumped
// filter held when it was dumped is then the copy's, acknowledged by the
// member it was loaded into: on every member at the end, like any other.

// loadTimeout bounds the wait for a load's answer.
const loadTimeout = 2 * time.Second

// copyFilter runs op, a copy. The dump is the chunks a dump request to
// op.Node would answer (dump.Scan over its filter); the load goes over a
// stream to op.To, a load request a chunk.
func (h *history) copyFilter(op Op) {
	src, dst := h.c.members[op.Node], h.c.members[op.To]
	if !src.up() || !dst.up() {
		return
	}
	f := versions(src, op.Filter).Winner()
	if f == nil {
		return // not there (yet, or any longer)
	}
	var held [][]byte
	for _, a := range h.acks {
		for _, k := range a.keys {
			if a.filter == op.Filter && f.Has(k) {
				held = append(held, k)
			}
		}
	}
	var chunks [][]byte
	for it := uint64(0); ; {
		next, chunk, err := dump.Scan(f, it, nil)
		if err != nil {
			h.r.failf("copy: the dump of %q on n%d at iterator %d: %v", op.Filter, src.i, it, err)
			return
		}
		if next == 0 {
			break
		}
		chunks, it = append(chunks, chunk), next
	}
	conn, err := h.c.nw.Dial(context.Background(), clientAddr, dst.addr)
	if err != nil {
		return // a member just killed
	}
	defer conn.Close()
	fr := wire.NewFrameReader(conn, 1<<16)
	for i, chunk := range chunks {
		req, err := wire.AppendLoadRequest(nil, wire.LoadRequest{ReqID: uint32(i + 1), Name: []byte(op.Into), Chunk: chunk})
		if err != nil {
			h.r.failf("copy: %v", err)
			return
		}
		conn.SetDeadline(time.Now().Add(loadTimeout))
		go conn.Write(req)
		h.c.settle()
		reply, err := fr.Next()
		if err != nil {
			return // the member went down, or its stream with it
		}
		if wire.Type(reply[0]) == wire.TypeError {
			e, _ := wire.DecodeError(reply)
			h.r.Errors[e.Code]++
			if !expectedCodes[e.Code] {
				h.r.failf("copy: n%d answered the load of chunk %d of %q into %q with error %d %q", dst.i, i, op.Filter, op.Into, e.Code, e.Msg)
			}
			return
		}
		if _, err := wire.DecodeLoaded(reply); err != nil {
			h.r.failf("copy: n%d answered a load with %v", dst.i, err)
			return
		}
	}
	h.r.Answers[OpCopy]++
	h.created[op.Into], h.createBy[op.Into] = true, dst.i
	h.acks = append(h.acks, &ackRec{keys: held, filter: op.Into, node: dst.i, at: h.c.elapsed(), loaded: true})
}
