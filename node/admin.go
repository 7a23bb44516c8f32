package node

import (
	"errors"
	"net/netip"

	"github.com/rmbd/rmbd/access"
	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/internal/version"
	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/wire"
)

// Requests about the node and its filters: ping, stats, members, peer
// requests, and creating, dropping and describing filters.

// ping answers with the node's identity and, for the filter the ping
// addresses (the default unless named), its fingerprint and alarms.
func (n *Node) ping(q *request) reply {
	p, err := wire.DecodePing(q.frame)
	if err != nil {
		return n.bad(q)
	}
	fp, a := n.reg.Default().Version().Def.FP, alarmsOf(n.reg.Default())
	if q.named {
		f := n.reg.Lookup(q.name).Winner()
		d, placed := n.reg.DescribeName(string(q.name)) // held by other members: as the catalog has it
		switch {
		case f != nil:
			fp, a = f.Version().Def.FP, alarmsOf(f)
		case placed:
			fp, a = d.FP, Alarms{}
		default:
			return n.refuse(q, wire.CodeRefused, "no filter "+string(q.name))
		}
	}
	var addr [64]byte
	out, _ := wire.AppendPing(q.w.buf[:0], wire.Ping{
		Type: wire.TypePong, ReqID: p.ReqID, Version: wire.ProtocolVersion,
		FP: fp, Name: n.name, Addr: n.Addr().AppendTo(addr[:0]),
		Flags: n.pongFlags(a), Build: []byte(version.String()),
	})
	return reply{frame: out}
}

// pongFlags says what a pong tells about the node and a filter whose
// alarms are a.
func (n *Node) pongFlags(a Alarms) uint8 {
	flags := wire.PongStages | wire.PongPeers | wire.PongExpiry | wire.PongWindows | wire.PongPlacement
	if n.keyed() {
		flags |= wire.PongAuthenticated
	}
	if a.OverCapacity {
		flags |= wire.PongOverCapacity
	}
	if a.FPHigh {
		flags |= wire.PongFPHigh
	}
	return flags
}

func (n *Node) membersRequest(q *request) reply {
	id, err := wire.DecodeMembersRequest(q.frame)
	if err != nil {
		return n.bad(q)
	}
	if !n.may(q, access.Admin) {
		return n.refuse(q, wire.CodeForbidden, "members: this address may not ask (--allow-admin)")
	}
	out, _ := wire.AppendMembers(q.w.buf[:0], id, n.Members())
	return reply{frame: out}
}

// peersRequest lists the default filter's push targets: static peers
// and members (admins).
func (n *Node) peersRequest(q *request) reply {
	id, err := wire.DecodePeersRequest(q.frame)
	if err != nil {
		return n.bad(q)
	}
	if !n.may(q, access.Admin) {
		return n.refuse(q, wire.CodeForbidden, "peers: this address may not ask (--allow-admin)")
	}
	var ps []wire.PeerInfo
	all := n.Peers()
	for _, p := range all[:min(len(all), wire.MaxPeersListed)] {
		ps = append(ps, p.Info())
	}
	out, _ := wire.AppendPeers(q.w.buf[:0], id, ps)
	return reply{frame: out}
}

func (n *Node) statsRequest(q *request) reply {
	id, err := wire.DecodeStatsRequest(q.frame)
	if err != nil {
		return n.bad(q)
	}
	if !n.may(q, access.Admin) {
		return n.refuse(q, wire.CodeForbidden, "stats: this address may not ask (--allow-admin)")
	}
	if !q.tcp && len(q.frame) < statsReplySize { // cut anyway: not worth gathering
		return reply{frame: n.tooLarge(q.w, q.w.buf[:0], q.frame, len(q.frame))}
	}
	out, _ := wire.AppendStats(q.w.buf[:0], id, n.Stats().WireStats())
	return reply{frame: out}
}

// peerRequest serves an extended peer request: a peer result once the
// address is taken (challenged), an error frame saying why not.
func (n *Node) peerRequest(q *request) reply {
	p, err := wire.DecodePeerRequest(q.frame)
	if err != nil {
		return n.bad(q)
	}
	if !n.may(q, access.Admin) {
		return n.refuse(q, wire.CodeForbidden, "peer: this address may not ask (--allow-admin)")
	}
	q.w.c.Inc(counter.PeerFrames)
	// Over UDP the request's source may be forged: what goes back to it
	// and the challenge to the address named, together, are no more bytes
	// than the request (which is at least as large as the challenge).
	budget := func(o peerOutcome) int {
		if o.challenged {
			return len(q.frame) - wire.ClassicKeyFrameSize
		}
		return len(q.frame)
	}
	if _, err := netip.ParseAddr(string(p.Host)); err == nil || q.tcp {
		// An address, or a stream that may wait for the lookup: answer now.
		var o peerOutcome
		done := make(chan struct{})
		n.addPeer(string(p.Host), p.Port, false, func(r peerOutcome) { o = r; close(done) })
		<-done
		out := peerAnswer(q.w.buf[:0], p.ReqID, o)
		if !q.tcp && len(out) > budget(o) {
			out = n.tooLarge(q.w, out, q.frame, budget(o))
		}
		return reply{frame: out}
	}
	// A host name over UDP: the reader goes on, the answer follows the lookup.
	reader, sealed, from, peer := q.w.reader, q.sealed, q.from, q.peer
	n.addPeer(string(p.Host), p.Port, false, func(o peerOutcome) {
		out := peerAnswer(nil, p.ReqID, o)
		if len(out) > budget(o) {
			n.meters.c.Inc(counter.UDPRepliesCut)
			return
		}
		if sealed {
			out = n.seal(nil, out, peer)
		}
		n.sendTo(reader, out, from)
	})
	return reply{}
}

// peerAnswer appends the answer to a peer request.
func peerAnswer(dst []byte, id uint32, o peerOutcome) []byte {
	if o.code != 0 {
		dst, _ = wire.AppendError(dst, wire.ErrorFrame{ReqID: id, Code: o.code, Msg: []byte(o.why)})
		return dst
	}
	var a [64]byte
	dst, _ = wire.AppendPeerResult(dst, wire.PeerResult{ReqID: id, State: o.state, Addr: o.addr.AppendTo(a[:0])})
	return dst
}

// filterOps is who may make each filter request.
var filterOps = map[uint8]access.Op{wire.FilterOpCreate: access.Create, wire.FilterOpDrop: access.Admin,
	wire.FilterOpInfo: access.Read, wire.FilterOpList: access.Read}

// filterRequest serves a filter request: create (admins, and clients
// --auto-create names, held to their quota), drop (admins), info or list
// (readers).
func (n *Node) filterRequest(q *request) reply {
	fq, err := wire.DecodeFilterRequest(q.frame)
	if err != nil {
		return n.bad(q)
	}
	if op := filterOps[fq.Op]; !n.may(q, op) {
		return n.refuse(q, wire.CodeForbidden, "filters: this address may not ask ("+op.Flag()+")")
	}
	name := string(fq.Name)
	var descs []wire.FilterDesc
	var flags uint8
	if fq.Detail&wire.FilterDetailStages != 0 {
		flags = wire.FiltersStages
	}
	if fq.Detail&wire.FilterDetailWindows != 0 || fq.Window != 0 { // only a client that knows windows sends one
		flags |= wire.FiltersStages | wire.FiltersWindows
	}
	if fq.Detail&wire.FilterDetailPlacement != 0 || fq.Replicas != 0 {
		flags |= wire.FiltersStages | wire.FiltersWindows | wire.FiltersPlacement
	}
	switch fq.Op {
	case wire.FilterOpCreate:
		_, err := n.createFor(q.from.Addr(), q.sealed, name, registry.Requested(fq, n.cfg.Expansion))
		d, ok := n.reg.DescribeName(name)
		if err == nil && !ok {
			err = errors.New("the filter could not be made")
		}
		if err != nil {
			return n.refuse(q, wire.CodeRefused, err.Error())
		}
		descs = append(descs, d)
	case wire.FilterOpDrop:
		if err := n.dropFilter(name); err != nil {
			return n.refuse(q, wire.CodeRefused, err.Error())
		}
	case wire.FilterOpInfo:
		d, ok := n.reg.DescribeName(name)
		if !ok {
			return n.refuse(q, wire.CodeRefused, "no filter "+name)
		}
		descs = append(descs, d)
	case wire.FilterOpList:
		var more bool
		if descs, more = n.reg.List(name, wire.MaxFilterInfos); more {
			flags |= wire.FiltersMore
		}
	}
	out, err := wire.AppendFilters(q.w.buf[:0], fq.ReqID, flags, descs)
	if errors.Is(err, wire.ErrValue) {
		return n.refuse(q, wire.CodeRefused, "a filter could not be described")
	}
	return reply{frame: out}
}
