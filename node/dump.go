package node

import (
	"net/netip"

	"github.com/rmbd/rmbd/access"
	"github.com/rmbd/rmbd/dump"
	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/store"
	"github.com/rmbd/rmbd/wire"
)

// Dumps and loads (package dump): the binary protocol's dump and load
// requests, and BF.LOADCHUNK's loads (respBackend).

// loadChunk loads chunk into name for an admin at from, a header making
// the filter as createFor does; with --fsync always the rows it changed
// are on disk before it returns.
func (n *Node) loadChunk(from netip.Addr, sealed bool, name string, chunk []byte) (dump.Loaded, error) {
	create := func(name string, s registry.Sizing) (*registry.Filter, error) {
		return n.createFor(from, sealed, name, s)
	}
	l, err := dump.Load(n.reg, create, name, chunk)
	if err == nil && l.Changed > 0 && n.cfg.Fsync == store.FsyncAlways && l.Segment.Store() != nil {
		_, err = l.Segment.Store().Flush()
	}
	return l, err
}

// dumpRequest answers a chunk of a filter's dump, over TCP only: a chunk
// is larger than a datagram.
func (n *Node) dumpRequest(q *request) reply {
	dq, err := wire.DecodeDumpRequest(q.frame)
	switch {
	case err != nil:
		return n.bad(q)
	case !n.may(q, access.Read):
		return n.refuse(q, wire.CodeForbidden, "dump: this address may not ask ("+access.Read.Flag()+")")
	case !q.tcp:
		return n.refuse(q, wire.CodeUseTCP, "a dump's chunks are larger than a datagram: use TCP")
	}
	out, err := dump.AnswerDump(q.w.buf[:0], n.reg, dq)
	if err != nil {
		return n.refuse(q, wire.CodeRefused, err.Error())
	}
	return reply{frame: out}
}

// loadRequest loads a chunk of a dump: an admin's request, since a load
// writes rows as they come, which no add can.
func (n *Node) loadRequest(q *request) reply {
	lq, err := wire.DecodeLoadRequest(q.frame)
	switch {
	case err != nil:
		return n.bad(q)
	case !n.may(q, access.Admin):
		return n.refuse(q, wire.CodeForbidden, "load: this address may not ask ("+access.Admin.Flag()+")")
	case !q.tcp:
		return n.refuse(q, wire.CodeUseTCP, "a dump's chunks are larger than a datagram: load them over TCP")
	}
	l, err := n.loadChunk(q.from.Addr(), q.sealed, dump.Name(lq.Name), lq.Chunk)
	if err != nil {
		return n.refuse(q, wire.CodeRefused, err.Error())
	}
	return reply{frame: dump.AnswerLoad(q.w.buf[:0], lq.ReqID, l)}
}
