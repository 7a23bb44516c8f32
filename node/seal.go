package node

import (
	"errors"
	"net/netip"

	"github.com/rmbd/rmbd/auth"
	"github.com/rmbd/rmbd/wire"
)

// With a cluster key, every frame nodes send each other travels sealed
// (package auth): the node seals what it sends, opens what it gets, and
// refuses node-to-node frames that come unsealed. Clients' adds and has
// need no key.

// keyed reports whether the node has a cluster key.
func (n *Node) keyed() bool { return n.sealer != nil }

// seal appends frame to dst, sealed when the node has a key.
func (n *Node) seal(dst, frame []byte) []byte {
	if n.sealer == nil {
		return append(dst, frame...)
	}
	out, err := n.sealer.Seal(dst, frame)
	if err != nil {
		return dst // cannot happen: only sealable frames come here
	}
	return out
}

// nodeFrame reports whether frames of type t go between nodes: with a
// key they must come sealed.
func nodeFrame(t wire.Type) bool {
	// A named frame is one if what it wraps is (namedSync checks).
	return wire.Sealable(t) && t != wire.TypeError && t != wire.TypePeerResult && t != wire.TypeNamed
}

// serveSealed opens a sealed datagram and serves its inner frame (pulls
// are served over TCP only).
func (n *Node) serveSealed(w *worker, frame []byte, from netip.AddrPort) []byte {
	s, err := n.open(w, frame)
	if err != nil {
		return n.sealRefused(w, frame, err)
	}
	if s.InnerType() == wire.TypePull {
		w.c.drop(Unsupported)
		return w.reply[:0]
	}
	return n.serveOpened(w, s, from)
}

// errNoKey: a sealed frame came to a node without a cluster key.
var errNoKey = errors.New("node: a sealed frame, and no cluster key")

// open checks a sealed frame; one that fails is counted and dropped.
func (n *Node) open(w *worker, frame []byte) (wire.Sealed, error) {
	if n.opener == nil {
		w.c.drop(Unsupported) // sealed frames mean nothing without a key
		return wire.Sealed{}, errNoKey
	}
	s, err := n.opener.Open(frame)
	if err != nil {
		w.c.drop(sealFailure(err))
	}
	return s, err
}

// sealRefused answers a sealed request that did not open, so that an
// operator's tool with a wrong key, or none needed, hears why rather than
// waiting: an error frame, unsealed, naming the request. Only requests
// get one (frames between nodes are dropped in silence), and not replays.
func (n *Node) sealRefused(w *worker, frame []byte, why error) []byte {
	s, err := wire.DecodeSealed(frame)
	if err != nil || s.InnerType() != wire.TypePeerRequest || errors.Is(why, auth.ErrReplay) {
		return w.reply[:0]
	}
	msg := "sealed with a key this node does not have (see --cluster-key-file)"
	if errors.Is(why, errNoKey) {
		msg = "this node has no cluster key: send the request unsealed"
	}
	return n.refuse(w.reply[:0], s.Inner, wire.CodeRefused, msg)
}

// serveOpened serves an opened frame's inner frame as coming from a
// member; the reply, if any, goes back sealed.
func (n *Node) serveOpened(w *worker, s wire.Sealed, from netip.AddrPort) []byte {
	w.sealed = true
	reply := n.handle(w, s.Inner, from)
	w.sealed = false
	if len(reply) == 0 {
		return reply
	}
	w.sealBuf = n.seal(w.sealBuf[:0], reply)
	return append(reply[:0], w.sealBuf...) // replies are always built in w.reply
}

// sealFailure is the counter for a frame that did not open.
func sealFailure(err error) Counter {
	switch {
	case errors.Is(err, auth.ErrReplay):
		return Replayed
	case errors.Is(err, auth.ErrTag), errors.Is(err, auth.ErrUnknownKey):
		return AuthFailed
	}
	return BadFrames
}

// SetClusterKeys replaces the cluster keys while the node runs, for a
// rotation: the first signs from now on, every one verifies. Memberlist's
// keyring follows.
func (n *Node) SetClusterKeys(keys []auth.Key) error {
	if n.sealer == nil {
		return errors.New("node: started without a cluster key: a key is set at start")
	}
	r, err := auth.NewKeyring(keys)
	if err != nil {
		return err
	}
	if m := n.mem.Load(); m != nil {
		if err := m.SetKeys(r.MemberlistKeys()); err != nil {
			return err
		}
	}
	n.opener.SetKeyring(r)
	n.sealer.SetKeyring(r)
	n.log.Info("cluster keys replaced", "keys", r.Len(), "signing", r.IDs()[0])
	return nil
}
