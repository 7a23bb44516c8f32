package node

import (
	"errors"

	"github.com/rmbd/rmbd/auth"
	"github.com/rmbd/rmbd/wire"
)

// With a cluster key, every frame nodes send each other travels sealed
// (package auth): the node seals what it sends, opens what it gets, and
// refuses node-to-node frames that come unsealed. Clients' adds and has
// need no key.

// keys seal the frames the node sends and open the ones it gets.
type keys struct {
	sealer *auth.Sealer
	opener *auth.Opener
}

// newKeys returns the keys of a keyring, validated already; nil without.
func newKeys(ks []auth.Key) *keys {
	if len(ks) == 0 {
		return nil
	}
	ring, _ := auth.NewKeyring(ks)
	return &keys{sealer: auth.NewSealer(ring), opener: auth.NewOpener(ring)}
}

// keyed reports whether the node has a cluster key.
func (n *Node) keyed() bool { return n.keys != nil }

// seal appends frame to dst, sealed when the node has a key.
func (n *Node) seal(dst, frame []byte) []byte {
	if n.keys == nil {
		return append(dst, frame...)
	}
	out, err := n.keys.sealer.Seal(dst, frame)
	if err != nil {
		return dst // cannot happen: only sealable frames come here
	}
	return out
}

// errNoKey: a sealed frame came to a node without a cluster key.
var errNoKey = errors.New("node: a sealed frame, and no cluster key")

// open checks a sealed frame.
func (n *Node) open(frame []byte) (wire.Sealed, error) {
	if n.keys == nil {
		return wire.Sealed{}, errNoKey
	}
	return n.keys.opener.Open(frame)
}

// sealFailure is the counter for a frame that did not open.
func sealFailure(err error) Counter {
	switch {
	case errors.Is(err, errNoKey):
		return Unsupported // sealed frames mean nothing without a key
	case errors.Is(err, auth.ErrReplay):
		return Replayed
	case errors.Is(err, auth.ErrTag), errors.Is(err, auth.ErrUnknownKey):
		return AuthFailed
	}
	return BadFrames
}

// nodeFrame reports whether frames of type t go between nodes: with a
// key they must come sealed. (A named frame is one if what it wraps is.)
func nodeFrame(t wire.Type) bool {
	return wire.Sealable(t) && t != wire.TypeError && t != wire.TypePeerResult && t != wire.TypeNamed
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
	if err != nil || s.InnerType() != wire.TypePeerRequest || errors.Is(why, auth.ErrReplay) {
		return reply{}
	}
	msg := "sealed with a key this node does not have (see --cluster-key-file)"
	if errors.Is(why, errNoKey) {
		msg = "this node has no cluster key: send the request unsealed"
	}
	q.frame = s.Inner
	return n.refuse(q, wire.CodeRefused, msg)
}
