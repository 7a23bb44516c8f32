package forward

import (
	"context"
	"net"
	"net/netip"
	"time"
)

// Config configures a Forwarder. A zero or negative field takes its
// default (DefaultConfig).
type Config struct {
	// Dial opens a stream to a member's data address. Its context ends at
	// the deadline of the forward that asked for the connection, or at
	// Close. The default dials TCP.
	Dial func(ctx context.Context, addr netip.AddrPort) (net.Conn, error)
	// Seal, when not nil, wraps a frame bound for the member at to (the
	// cluster key); it appends to dst. It is called outside the write
	// lock, so that sealing costs no other forward its turn: frames may
	// reach the member in another order than they were sealed in, by at
	// most MaxInFlight, well within a receiver's replay window.
	Seal func(dst, frame []byte, to netip.AddrPort) []byte
	// Open, when not nil, unwraps a frame received from the member at
	// from, refusing what was not sealed for this node. frame is valid
	// for the call alone; Open may return a sub-slice of it. A refusal
	// breaks the connection: nothing it carried can be trusted, its
	// request id included.
	Open func(frame []byte, from netip.AddrPort) ([]byte, error)
	// MaxInFlight bounds the forwards waiting on one member at once
	// (default 256); past it Do fails at once with ErrBusy (wrapped,
	// naming the member). A member that stalls then costs its callers an
	// immediate busy answer, not a queue that grows with their load.
	MaxInFlight int
	// Timeout bounds one forward (default 2s) when ctx has no earlier
	// deadline: dialing, writing and waiting for the answer together.
	Timeout time.Duration
	// IdleTimeout closes a connection no forward has used for that long
	// (default 60s), so that members that left cost nothing.
	IdleTimeout time.Duration
}

// DefaultConfig returns the defaults: TCP, no sealing, 256 forwards in
// flight per member, 2s a forward (a forward that takes longer has lost
// its client anyway), connections closed after a minute unused.
func DefaultConfig() Config {
	return Config{
		Dial:        dialTCP,
		MaxInFlight: 256,
		Timeout:     2 * time.Second,
		IdleTimeout: 60 * time.Second,
	}
}

// withDefaults fills c's zero or negative fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Dial == nil {
		c.Dial = d.Dial
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = d.MaxInFlight
	}
	if c.Timeout <= 0 {
		c.Timeout = d.Timeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	return c
}

func dialTCP(ctx context.Context, addr netip.AddrPort) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr.String())
}
