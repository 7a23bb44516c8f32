package client

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/wire"
)

// Peer asks the node to push its rows to hostport (a directed edge), then
// pings it so that an unreachable node is reported.
func (c *Client) Peer(ctx context.Context, hostport string) error {
	host, port, err := splitHostPort(hostport)
	if err != nil {
		return c.opErr("peer", err)
	}
	frame, err := wire.AppendClassicPeer(nil, []byte(host), port)
	if err != nil {
		return c.opErr("peer", fmt.Errorf("%w: host name of %d bytes (at most %d)", ErrKeyTooLong, len(host), wire.MaxClassicKey))
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	if err := c.t.send(ctx, frame); err != nil {
		return c.opErr("peer", err)
	}
	if c.o.classic {
		return nil
	}
	_, err = c.Ping(ctx)
	return c.opErr("peer", err)
}

func splitHostPort(hostport string) (string, uint16, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", 0, fmt.Errorf("client: bad address %q: %w", hostport, err)
	}
	p, err := net.LookupPort("udp", port)
	if err != nil || p < 1 || p > 65535 || host == "" {
		return "", 0, fmt.Errorf("client: bad address %q: want HOST:PORT with a port 1..65535", hostport)
	}
	return host, uint16(p), nil
}

// Pong is a node's answer to a ping.
type Pong struct {
	RTT         time.Duration
	Name        string
	Addr        string // the node's data address
	Version     int    // protocol version
	Fingerprint filter.Fingerprint
}

// ask sends one extended request built by encode (given its request id)
// and returns the reply. Classic nodes answer none of these.
func (c *Client) ask(ctx context.Context, op string, encode func(dst []byte, id uint32) ([]byte, error)) ([]byte, error) {
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
	return c.t.roundTrip(ctx, &request{frame: frame, match: match{id: id}, reply: make(chan reply, 1)})
}

// badReply wraps a reply that did not decode (err) or was not the one
// asked for (err nil).
func badReply(err error) error {
	if err == nil {
		return fmt.Errorf("%w: unexpected frame", ErrProtocol)
	}
	return fmt.Errorf("%w: %w", ErrProtocol, err)
}

// Ping measures the round trip to the node and returns who it is.
func (c *Client) Ping(ctx context.Context) (Pong, error) {
	began := time.Now()
	b, err := c.ask(ctx, "ping", func(dst []byte, id uint32) ([]byte, error) {
		return wire.AppendPing(dst, wire.Ping{Type: wire.TypePing, ReqID: id, Version: wire.ProtocolVersion})
	})
	if err != nil {
		return Pong{}, c.opErr("ping", err)
	}
	rtt := time.Since(began)
	p, err := wire.DecodePing(b)
	if err != nil || p.Type != wire.TypePong {
		return Pong{}, c.opErr("ping", badReply(err))
	}
	return Pong{RTT: rtt, Name: string(p.Name), Addr: string(p.Addr), Version: int(p.Version), Fingerprint: p.FP}, nil
}

// Stat is one of a node's counters.
type Stat struct {
	Name  string
	Value uint64
}

// Stats returns the node's counters, in the order it sends them.
func (c *Client) Stats(ctx context.Context) ([]Stat, error) {
	b, err := c.ask(ctx, "stats", wire.AppendStatsRequest)
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
}

var memberStates = [...]string{wire.MemberAlive: "alive", wire.MemberSuspect: "suspect", wire.MemberDead: "dead", wire.MemberLeft: "left"}

// Members lists the cluster as the node sees it (empty without membership).
func (c *Client) Members(ctx context.Context) ([]Member, error) {
	b, err := c.ask(ctx, "members", wire.AppendMembersRequest)
	if err != nil {
		return nil, c.opErr("members", err)
	}
	ms, err := wire.DecodeMembers(b)
	if err != nil {
		return nil, c.opErr("members", badReply(err))
	}
	var out []Member
	for m := range ms.All() {
		out = append(out, Member{Name: string(m.Name), GossipAddr: string(m.GossipAddr), DataAddr: string(m.DataAddr),
			State: memberStates[m.State], FingerprintMatch: m.FPMatch, Fingerprint: m.FP})
	}
	return out, nil
}
