package node

import (
	"errors"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/rmbd/rmbd/auth"
	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/wire"
)

// With a cluster key, every frame nodes send each other travels sealed
// (package auth): the node seals what it sends, opens what it gets, and
// refuses node-to-node frames that come unsealed. Clients' adds and has
// need no key.

// keys seal the frames the node sends and open the ones it gets. A
// sealed frame is for one receiver, named by its id (the id the receiver
// seals with, new at every start): the node learns the ids of those it
// sends to from members' metadata, from every frame a node sends it over
// UDP (from its data address), and from the hints a node sends back when
// a frame was sealed for an id it no longer has.
type keys struct {
	sealer *auth.Sealer
	opener *auth.Opener
	ids    *auth.Receivers // receivers' ids, by data address

	warned atomic.Int64 // when frames refused for their time were last logged (Unix ns)
}

// maxIDs bounds the receivers' ids known; past it, one is forgotten (its
// next frame is refused, and the hint teaches it again).
const maxIDs = 4096

// newKeys returns the keys of a keyring, validated already; nil without.
func newKeys(ks []auth.Key) *keys {
	if len(ks) == 0 {
		return nil
	}
	ring, _ := auth.NewKeyring(ks)
	s := auth.NewSealer(ring)
	return &keys{sealer: s, opener: auth.NewOpener(ring, s.Sender()), ids: auth.NewReceivers(maxIDs)}
}

// keyed reports whether the node has a cluster key.
func (n *Node) keyed() bool { return n.keys != nil }

// SealID is the id frames sealed for this node carry (new at every
// start); 0 without a cluster key.
func (n *Node) SealID() uint64 {
	if n.keys == nil {
		return 0
	}
	return n.keys.sealer.Sender()
}

// learnID records the id of the node at a, when the node has a key.
func (n *Node) learnID(a netip.AddrPort, id uint64) {
	if n.keys != nil {
		n.keys.ids.Learn(a, id)
	}
}

// seal appends frame to dst, sealed for the node whose id is to when the
// node has a key.
func (n *Node) seal(dst, frame []byte, to uint64) []byte {
	if n.keys == nil {
		return append(dst, frame...)
	}
	out, err := n.keys.sealer.Seal(dst, frame, to, n.cfg.Now())
	if err != nil {
		return dst // cannot happen: only sealable frames come here
	}
	return out
}

// sealFor appends frame to dst, sealed for the node at a.
func (n *Node) sealFor(dst, frame []byte, a netip.AddrPort) []byte {
	if n.keys == nil {
		return append(dst, frame...)
	}
	return n.seal(dst, frame, n.keys.ids.ID(a))
}

// errNoKey: a sealed frame came to a node without a cluster key.
var errNoKey = errors.New("node: a sealed frame, and no cluster key")

// open checks a sealed frame. On auth.ErrReceiver it returns the frame
// too: its sender is owed a hint (hint).
func (n *Node) open(frame []byte) (wire.Sealed, error) {
	if n.keys == nil {
		return wire.Sealed{}, errNoKey
	}
	return n.keys.opener.Open(frame, n.cfg.Now())
}

// hint is what a node sealed a frame for this node under another id is
// sent: an error frame naming the request, if any, sealed by this node
// for it — its sender field tells the node's id. Nil if it would be
// larger than budget (the frame refused: a source may be forged).
func (n *Node) hint(dst []byte, s wire.Sealed, budget int) []byte {
	id, _ := wire.RequestID(s.Inner)
	if inner, ok := wire.NamedInner(s.Inner); ok {
		id, _ = wire.RequestID(inner)
	}
	e, _ := wire.AppendError(nil, wire.ErrorFrame{ReqID: id, Code: wire.CodeReceiver})
	if len(e)+wire.SealedOverhead > budget {
		return dst
	}
	return n.seal(dst, e, s.Sender)
}

// clockWarning logs, at most once a minute, a frame refused for its time:
// a replay, or a sender whose clock is more than auth.MaxSkew apart.
func (n *Node) clockWarning(from netip.AddrPort, err error) {
	if !errors.Is(err, auth.ErrStale) {
		return
	}
	now, last := time.Now().UnixNano(), n.keys.warned.Load()
	if now-last < int64(time.Minute) || !n.keys.warned.CompareAndSwap(last, now) {
		return
	}
	n.log.Warn("sealed frames refused for their time: replayed, or the sender's clock is more than "+auth.MaxSkew.String()+
		" from this node's (keep members' clocks in step, e.g. with NTP)", "from", from.String(), "err", err)
}

// sealFailure is the counter for a frame that did not open.
func sealFailure(err error) Counter {
	switch {
	case errors.Is(err, errNoKey):
		return counter.Unsupported // sealed frames mean nothing without a key
	case errors.Is(err, auth.ErrReplay):
		return counter.Replayed
	case errors.Is(err, auth.ErrReceiver):
		return counter.WrongReceiver
	case errors.Is(err, auth.ErrTag), errors.Is(err, auth.ErrUnknownKey):
		return counter.AuthFailed
	}
	return counter.BadFrames
}

// nodeFrame reports whether frames of type t go between nodes: with a
// key they must come sealed. (A named frame is one if what it wraps is;
// admin requests may come sealed, from a client holding the key, or
// plain.)
func nodeFrame(t wire.Type) bool {
	return wire.Sealable(t) && !wire.AdminSealable(t) && t != wire.TypeError && t != wire.TypePeerResult && t != wire.TypeNamed
}

// SetClusterKeys replaces the cluster keys while the node runs, for a
// rotation: the first signs from now on, every one verifies. Memberlist's
// keyring follows.
func (n *Node) SetClusterKeys(ks []auth.Key) error {
	if n.keys == nil {
		return errors.New("node: started without a cluster key: a key is set at start")
	}
	r, err := auth.NewKeyring(ks)
	if err != nil {
		return err
	}
	if m := n.mem.Load(); m != nil {
		if err := m.SetKeys(r.MemberlistKeys()); err != nil {
			return err
		}
	}
	n.keys.opener.SetKeyring(r)
	n.keys.sealer.SetKeyring(r)
	n.log.Info("cluster keys replaced", "keys", r.Len(), "signing", r.IDs()[0])
	return nil
}

// sealRefused answers a sealed request that did not open, so that an
// operator's tool with a wrong key, or none needed, hears why rather than
// waiting: an error frame, unsealed, naming the request. Only requests
// get one (frames between nodes are dropped in silence), and not replays.
func (n *Node) sealRefused(q *request, why error) reply {
	s, err := wire.DecodeSealed(q.frame)
	if t := s.InnerType(); err != nil || (t != wire.TypePeerRequest && !wire.AdminSealable(t)) || errors.Is(why, auth.ErrReplay) {
		return reply{}
	}
	msg := "sealed with a key this node does not have (see --cluster-key-file)"
	if errors.Is(why, errNoKey) {
		msg = "this node has no cluster key: send the request unsealed"
	}
	q.frame = s.Inner
	return n.refuse(q, wire.CodeRefused, msg)
}
