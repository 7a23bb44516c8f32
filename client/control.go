package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/internal/hostport"
	"github.com/rmbd/rmbd/wire"
)

// PeerResult is what a node said to a peer request.
type PeerResult struct {
	// Addr is the address the node took, its host resolved.
	Addr string
	// New reports an address that was not a push target yet: the node sent
	// it a challenge, and pushes rows once it answers. False: it was a
	// push target already.
	New bool
}

// Peer asks the node to push its rows to hostport (a directed edge). The
// node answers once it has taken the address, or with a *ServerError
// saying why not. Only loopback and the addresses the node allows
// (--allow-admin) may ask, and a node with a cluster key takes the
// request only sealed (WithClusterKeys). WithClassic sends the classic
// peer frame, which nobody answers.
func (c *Client) Peer(ctx context.Context, hostport string) (PeerResult, error) {
	host, port, err := splitHostPort(hostport)
	if err != nil {
		return PeerResult{}, c.opErr("peer", err)
	}
	if c.o.classic {
		frame, err := wire.AppendClassicPeer(nil, []byte(host), port)
		if err != nil {
			return PeerResult{}, c.opErr("peer", fmt.Errorf("%w: host name of %d bytes (at most %d)", ErrKeyTooLong, len(host), wire.MaxClassicKey))
		}
		ctx, cancel := c.withTimeout(ctx)
		defer cancel()
		return PeerResult{}, c.opErr("peer", c.t.send(ctx, frame))
	}
	if len(host) > wire.MaxNameLen {
		return PeerResult{}, c.opErr("peer", fmt.Errorf("%w: host name of %d bytes (at most %d)", ErrKeyTooLong, len(host), wire.MaxNameLen))
	}
	b, err := c.ask(ctx, "peer", true, func(dst []byte, id uint32) ([]byte, error) {
		return wire.AppendPeerRequest(dst, wire.PeerRequest{ReqID: id, Host: []byte(host), Port: port})
	})
	if err != nil {
		return PeerResult{}, c.opErr("peer", err)
	}
	r, err := wire.DecodePeerResult(b)
	if err != nil {
		return PeerResult{}, c.opErr("peer", badReply(err))
	}
	return PeerResult{Addr: string(r.Addr), New: r.State == wire.PeerChallenged}, nil
}

func splitHostPort(s string) (string, uint16, error) {
	host, port, err := hostport.Split(s)
	if err != nil {
		return "", 0, fmt.Errorf("client: bad address %q: want HOST:PORT with a port 1..65535: %w", s, err)
	}
	return host, port, nil
}

// Pong is a node's answer to a ping.
type Pong struct {
	RTT         time.Duration
	Name        string
	Addr        string // the node's data address
	Version     int    // protocol version
	Fingerprint filter.Fingerprint
	// Authenticated reports a node with a cluster key: its cluster
	// traffic is sealed. Without one, anyone who can reach its ports can
	// write rows into its filter.
	Authenticated bool
	Build         string // the node's version, empty from older nodes
	// OverCapacity reports the filter pinged (the node's own, or the one
	// the client addresses) holding more keys than it was sized for;
	// FPHigh one whose estimated false-positive rate is over twice its
	// target. Either way, has answers true for more absent keys than the
	// filter promised.
	OverCapacity, FPHigh bool
	// DescribesStages reports a node that gives filters' stages
	// (FilterInfo.Stages); ListsPeers one that answers Peers; Expires one
	// that answers Expire, Persist and Deadline; Windows one that makes
	// windowed filters (CreateWindowedFilter); Placement one that places
	// filters on some members (CreatePlacedFilter), forwards the keys of
	// those it does not hold, and says where they are (FilterInfo.Owners).
	DescribesStages, ListsPeers, Expires, Windows, Placement bool
}

// ask sends one extended request built by encode (given its request id)
// and returns the reply. Classic nodes answer none of these.
//
// Over UDP the request is padded to a full datagram: a node sends an
// address it has not verified no more bytes than it got. An answer larger
// still is refused with "use TCP", and the request goes once more over a
// TCP connection of its own. seal seals the request when the client has
// a cluster key; sealed answers are opened.
func (c *Client) ask(ctx context.Context, op string, seal bool, encode func(dst []byte, id uint32) ([]byte, error)) ([]byte, error) {
	if c.o.classic {
		return nil, fmt.Errorf("client: classic nodes do not answer %s", op)
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	id := c.ids.Add(1)
	frame, err := encode(nil, id)
	if err != nil {
		return nil, err
	}
	seal = seal && c.sealer != nil
	udp, hinted := !c.o.tcp, false
	for {
		out, err := c.exchange(ctx, c.request(frame, id, udp, seal), udp, seal)
		var se *ServerError
		switch {
		case udp && errors.As(err, &se) && se.Code == wire.CodeUseTCP:
			udp = false // the answer is larger than the request may be
		case seal && !hinted && errors.As(err, &se) && se.Code == wire.CodeReceiver:
			hinted = true // sealed for the node before it was known: its hint named it
		default:
			return out, err
		}
	}
}

// exchange sends r over UDP or TCP (a connection of its own, unless the
// client's is TCP) and returns the answer, opened if sealed.
func (c *Client) exchange(ctx context.Context, r *request, udp, sealed bool) ([]byte, error) {
	var b []byte
	var err error
	if udp || c.o.tcp {
		b, err = c.t.roundTrip(ctx, r)
	} else {
		b, err = c.overTCP(ctx, r)
	}
	if err != nil {
		return nil, err
	}
	return c.open(b, sealed)
}

// request wraps frame for the transport: padded to a datagram, sealed.
func (c *Client) request(frame []byte, id uint32, pad, seal bool) *request {
	frame = bytes.Clone(frame)
	if pad {
		size := c.o.maxDatagram
		if seal {
			size -= wire.SealedOverhead
		}
		frame = padRequest(frame, size) // only paddable requests come here
	}
	if seal {
		frame, _ = c.sealer.Seal(nil, frame, c.nodeID.Load(), time.Now()) // a peer request is sealable
	}
	return &request{frame: frame, match: match{id: id}, reply: make(chan reply, 1)}
}

// padRequest pads a request to size bytes; a named frame's request is
// padded inside it.
func padRequest(frame []byte, size int) []byte {
	if wire.Type(frame[0]) == wire.TypeNamed {
		if n, err := wire.DecodeNamed(frame); err == nil {
			inner, _ := wire.PadFrame(bytes.Clone(n.Inner), 0, size-wire.NamedOverhead(string(n.Name), n.Segment))
			if out, err := wire.AppendNamedSegment(nil, string(n.Name), n.Segment, inner); err == nil {
				return out
			}
		}
	}
	out, _ := wire.PadFrame(frame, 0, size)
	return out
}

// overTCP sends r on a TCP connection of its own.
func (c *Client) overTCP(ctx context.Context, r *request) ([]byte, error) {
	t, err := dialTCP(ctx, c.addr)
	if err != nil {
		return nil, err
	}
	defer t.close()
	return t.roundTrip(ctx, r)
}

// open returns a sealed answer's inner frame, checked with the cluster
// keys. An answer to a sealed request must come sealed, but for error
// frames, which a node sends unsealed when it cannot open the request.
func (c *Client) open(b []byte, sealed bool) ([]byte, error) {
	if len(b) == 0 || wire.Type(b[0]) != wire.TypeSealed {
		if sealed {
			return nil, fmt.Errorf("%w: an unsealed answer to a sealed request", ErrProtocol)
		}
		return b, nil
	}
	if c.opener == nil {
		return nil, fmt.Errorf("%w: a sealed answer, and no cluster key to open it", ErrProtocol)
	}
	s, err := c.opener.Open(b, time.Now())
	if err != nil {
		return nil, badReply(err)
	}
	if s.InnerType() == wire.TypeError {
		e, err := wire.DecodeError(s.Inner)
		if err != nil {
			return nil, badReply(err)
		}
		if e.Code == wire.CodeReceiver {
			c.nodeID.Store(s.Sender) // a hint: the node's id
		}
		return nil, &ServerError{Code: e.Code, Msg: string(e.Msg)}
	}
	return s.Inner, nil
}

// badReply wraps a reply that did not decode (err) or was not the one
// asked for (err nil).
func badReply(err error) error {
	if err == nil {
		return fmt.Errorf("%w: unexpected frame", ErrProtocol)
	}
	return fmt.Errorf("%w: %w", ErrProtocol, err)
}

// Ping measures the round trip to the node and returns who it is, with
// the fingerprint and alarms of the filter the client addresses.
func (c *Client) Ping(ctx context.Context) (Pong, error) {
	if err := c.checkFilter(); err != nil {
		return Pong{}, err
	}
	began := time.Now()
	b, err := c.ask(ctx, "ping", false, func(dst []byte, id uint32) ([]byte, error) {
		p, err := wire.AppendPing(dst, wire.Ping{Type: wire.TypePing, ReqID: id, Version: wire.ProtocolVersion})
		if err != nil {
			return p, err
		}
		return c.named(p)
	})
	if err != nil {
		return Pong{}, c.opErr("ping", err)
	}
	rtt := time.Since(began)
	p, err := wire.DecodePing(b)
	if err != nil || p.Type != wire.TypePong {
		return Pong{}, c.opErr("ping", badReply(err))
	}
	return Pong{RTT: rtt, Name: string(p.Name), Addr: string(p.Addr), Version: int(p.Version), Fingerprint: p.FP,
		Authenticated: p.Flags&wire.PongAuthenticated != 0, Build: string(p.Build),
		OverCapacity: p.Flags&wire.PongOverCapacity != 0, FPHigh: p.Flags&wire.PongFPHigh != 0,
		DescribesStages: c.learnDetail(p.Flags)&wire.FilterDetailStages != 0, ListsPeers: p.Flags&wire.PongPeers != 0,
		Expires: p.Flags&wire.PongExpiry != 0, Windows: p.Flags&wire.PongWindows != 0, Placement: p.Flags&wire.PongPlacement != 0}, nil
}

// Stat is one of a node's counters.
type Stat struct {
	Name  string
	Value uint64
}

// Stats returns the node's counters, in the order it sends them.
func (c *Client) Stats(ctx context.Context) ([]Stat, error) {
	b, err := c.ask(ctx, "stats", true, wire.AppendStatsRequest)
	if err != nil {
		return nil, c.opErr("stats", err)
	}
	s, err := wire.DecodeStats(b)
	if err != nil {
		return nil, c.opErr("stats", badReply(err))
	}
	var out []Stat
	for name, v := range s.All() {
		out = append(out, Stat{string(name), v})
	}
	return out, nil
}

// Member is a cluster member as the node sees it.
type Member struct {
	Name       string
	GossipAddr string
	DataAddr   string
	State      string // alive, suspect, dead or left
	// FingerprintMatch reports whether its filter is the node's: members
	// with another filter are never synced with.
	FingerprintMatch bool
	Fingerprint      filter.Fingerprint
	// Age is how long the member has been in its state, as the node saw
	// it change (zero from older nodes).
	Age time.Duration
	// LastSync is how long ago the member last acknowledged rows from
	// the node; negative if it never did (or the node does not say).
	LastSync time.Duration
}

var memberStates = [...]string{wire.MemberAlive: "alive", wire.MemberSuspect: "suspect", wire.MemberDead: "dead", wire.MemberLeft: "left"}

// Peer is one of the node's push targets for its own filter: a static
// peer (--peer, a peer request) or a cluster member.
type Peer struct {
	Addr   string // its data address
	Member bool   // a cluster member, not a static peer
	// Verified: a member, or a static peer that answered its challenge;
	// an unverified one gets no rows.
	Verified bool
	// Missed counts the rounds in a row it has not acknowledged.
	Missed int
	// AckedRounds is how many gossip rounds ago it last acknowledged rows
	// (0: this one); -1 if it never did.
	AckedRounds int
}

// ErrNoPeersList reports a node that does not list its peers (an earlier
// build).
var ErrNoPeersList = errors.New("the node does not list its peers (a build from before it could)")

// Peers lists the node's push targets for its own filter: its static
// peers and its members.
func (c *Client) Peers(ctx context.Context) ([]Peer, error) {
	if c.o.classic {
		return nil, errors.New("client: classic nodes do not answer peers")
	}
	d := *c
	d.filter = ""
	p, err := d.Ping(ctx)
	if err != nil {
		return nil, c.opErr("peers", err)
	}
	if !p.ListsPeers {
		return nil, c.opErr("peers", ErrNoPeersList)
	}
	b, err := c.ask(ctx, "peers", true, wire.AppendPeersRequest)
	if err != nil {
		return nil, c.opErr("peers", err)
	}
	ps, err := wire.DecodePeers(b)
	if err != nil {
		return nil, c.opErr("peers", badReply(err))
	}
	out := make([]Peer, 0, len(ps.List))
	for _, p := range ps.List {
		acked := int(p.AckedTicksAgo)
		if p.AckedTicksAgo == wire.NeverAcked {
			acked = -1
		}
		out = append(out, Peer{Addr: string(p.Addr), Member: p.Flags&wire.PeerMember != 0, Verified: p.Flags&wire.PeerVerified != 0,
			Missed: int(p.Missed), AckedRounds: acked})
	}
	return out, nil
}

// Members lists the cluster as the node sees it (empty without membership).
func (c *Client) Members(ctx context.Context) ([]Member, error) {
	b, err := c.ask(ctx, "members", true, wire.AppendMembersRequest)
	if err != nil {
		return nil, c.opErr("members", err)
	}
	ms, err := wire.DecodeMembers(b)
	if err != nil {
		return nil, c.opErr("members", badReply(err))
	}
	var out []Member
	for m := range ms.All() {
		last := time.Duration(-1)
		if m.LastSync != wire.NeverSynced {
			last = time.Duration(m.LastSync) * time.Millisecond
		}
		out = append(out, Member{Name: string(m.Name), GossipAddr: string(m.GossipAddr), DataAddr: string(m.DataAddr),
			State: memberStates[m.State], FingerprintMatch: m.FPMatch, Fingerprint: m.FP,
			Age: time.Duration(m.Age) * time.Second, LastSync: last})
	}
	return out, nil
}
