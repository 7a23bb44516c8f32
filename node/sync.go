package node

import (
	"errors"

	"github.com/rmbd/rmbd/access"
	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/wire"
)

// Rows from peers: classic syncs (the default filter, classic), row syncs
// of any filter's segment, and their acks.

func (n *Node) classicSync(q *request) reply {
	s, err := wire.DecodeClassicSync(q.frame)
	if err != nil {
		return n.bad(q)
	}
	ack, changed, err := gossip.MergeClassicSync(n.Filter(), s, q.w.buf[:0])
	if err != nil {
		return n.mergeFailed(q, err)
	}
	q.w.c.Inc(counter.SyncFramesMerged)
	q.w.c.Inc(counter.SyncRowsMerged)
	if changed {
		q.w.c.Inc(counter.SyncRowsChanged)
	}
	return reply{frame: ack}
}

// rowSync merges a run of rows into the segment they are of — the version
// of the filter whose fingerprint they carry — and acknowledges them.
// Rows of a dropped version, or of one this node does not have, are
// refused by their fingerprint.
func (n *Node) rowSync(q *request) reply {
	s, err := wire.DecodeRowSync(q.frame)
	if err != nil {
		return n.bad(q)
	}
	seg := n.segmentFor(q, s.FP)
	if seg == nil {
		q.w.c.Drop(counter.FingerprintMismatch) // dropped, not made here (yet), or another filter
		return reply{}
	}
	ack, changed, err := gossip.MergeRowSync(seg.Rows(), s, q.w.sealBuf[:0], !n.repl.IsMember(q.from))
	q.w.sealBuf = ack
	if err != nil {
		return n.mergeFailed(q, err)
	}
	q.w.c.Inc(counter.SyncFramesMerged)
	q.w.c.Add(counter.SyncRowsMerged, uint64(s.Runs.Rows()))
	q.w.c.Add(counter.SyncRowsChanged, uint64(changed))
	if !q.named {
		return reply{frame: append(q.w.buf[:0], ack...)}
	}
	out, err := wire.AppendNamedSegment(q.w.buf[:0], string(q.name), q.seg, ack)
	if err != nil {
		return reply{}
	}
	return reply{frame: out}
}

// segmentFor returns the segment q addresses (the default filter's first,
// unless named) of the version whose rows have fingerprint fp, or nil.
func (n *Node) segmentFor(q *request, fp filter.Fingerprint) *registry.Segment {
	if q.named {
		return n.reg.Lookup(q.name).SegmentOrStage(q.seg, fp) // a stage a member opened first opens here
	}
	return n.reg.Default().SegmentFor(0, fp)
}

func (n *Node) mergeFailed(q *request, err error) reply {
	if errors.Is(err, filter.ErrFingerprint) {
		q.w.c.Drop(counter.FingerprintMismatch)
		n.log.Debug("sync refused", "err", err)
	} else {
		q.w.c.Drop(counter.RowRange)
	}
	return reply{}
}

// rowAck takes an ack of rows this node sent. Acks only mean something
// from a peer's listening address: not over TCP.
func (n *Node) rowAck(q *request) reply {
	a, err := wire.DecodeRowAck(q.frame)
	if err != nil {
		return n.bad(q)
	}
	if !q.tcp {
		var vs registry.Versions // the default's first segment
		if q.named {
			if vs = n.reg.Lookup(q.name); vs == nil {
				return reply{}
			}
		}
		n.repl.RowAck(q.w.reader, q.from, vs, q.seg, a, &q.w.out)
	}
	return reply{}
}

func (n *Node) classicAck(q *request) reply {
	if wire.DecodeClassicAck(q.frame) != nil {
		return n.bad(q)
	}
	if !q.tcp {
		n.repl.ClassicAck(q.from)
	}
	return reply{}
}

// classicPeer serves a classic peer frame: push rows to the address it
// names, once it answers a challenge.
func (n *Node) classicPeer(q *request) reply {
	p, err := wire.DecodeClassicPeer(q.frame)
	if err != nil || p.Port == 0 || len(p.Host) == 0 {
		return n.bad(q)
	}
	if !n.may(q, access.Admin) {
		return n.refuseClassic(q, "peer: this address may not ask (--allow-admin)")
	}
	q.w.c.Inc(counter.PeerFrames)
	n.addPeer(string(p.Host), p.Port, false, nil)
	return reply{}
}
