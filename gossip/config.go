package gossip

import (
	"errors"
	"fmt"

	"github.com/rmbd/rmbd/wire"
)

// ErrConfig reports an invalid Config.
var ErrConfig = errors.New("gossip: invalid config")

// Config tunes a Gossip.
type Config struct {
	// Classic pushes every row every tick in classic frames (the original
	// rmbd); otherwise only changed rows go, in row sync frames.
	Classic bool
	// PruneAfter removes a static peer after this many rounds without an
	// ack. Members are never pruned here: membership decides.
	PruneAfter int
	// Fanout is how many static peers with news start a new round each
	// tick; the rest wait their turn (delta mode). Members with news all
	// start one.
	Fanout int
	// AckTimeout is how many ticks a frame waits for its ack before it is
	// sent again (delta mode).
	AckTimeout int
	// MaxFrame bounds the size of each emitted frame (a UDP datagram).
	MaxFrame int
	// MaxInflightRows bounds the rows sent to one peer and not yet acked
	// (the window); a larger round continues as acks come back.
	MaxInflightRows int
	// MaxTickBytes bounds the bytes of all frames emitted in one tick.
	MaxTickBytes int
	// FillMembers sends a new member every set row once, as a static peer
	// gets them, instead of assuming it has them (the default filter's
	// members fill by anti-entropy pulls; named filters' by this).
	FillMembers bool
	// MaxPeers bounds the peer table. Past it a new peer takes the place
	// of a static peer that never acknowledged anything, the oldest;
	// with none such, AddPeer and AddMember refuse it.
	MaxPeers int
	// MaxUnackedTickBytes bounds the bytes one tick sends, together, to
	// static peers that have not yet acknowledged a frame: peers that
	// answer a challenge and then never ack cannot take the tick's budget
	// from the peers that work (delta mode).
	MaxUnackedTickBytes int
	// ReverifyAfter makes a static peer answer a challenge again after
	// this many ticks (0: never). Classic acks are one byte that names
	// nothing, so anyone could keep a gone peer alive with forged ones;
	// delta acks echo a random round token and need no such check.
	ReverifyAfter int
	// Seed seeds the choice of peers each tick. Nodes should differ (the
	// node uses a hash of its address) so that they spread news to
	// different peers; tests fix it to replay a run.
	Seed uint64
}

// DefaultConfig is the default profile: delta sync to 3 peers a tick, a
// tick to ack, frames that fit a 1,400-byte datagram, at most 1,024 rows
// (64 KiB of blocked rows, well within a receiver's default socket buffer)
// in flight per peer and 16 MiB per tick, prune static peers after 10
// missed rounds, 1,024 peers.
func DefaultConfig() Config {
	return Config{
		PruneAfter:      10,
		Fanout:          3,
		AckTimeout:      1,
		MaxFrame:        wire.MaxDatagram,
		MaxInflightRows: 1024,
		MaxTickBytes:    16 << 20,
		MaxPeers:        1024,

		MaxUnackedTickBytes: 64 << 10,
	}
}

// ClassicConfig is the original rmbd's behaviour: every row every tick,
// prune after one missed round.
func ClassicConfig() Config {
	c := DefaultConfig()
	c.Classic = true
	c.PruneAfter = 1
	c.ReverifyAfter = 20
	return c
}

func (c Config) validate() error {
	switch {
	case c.PruneAfter < 1:
		return fmt.Errorf("%w: PruneAfter %d is below 1", ErrConfig, c.PruneAfter)
	case c.Fanout < 1:
		return fmt.Errorf("%w: Fanout %d is below 1", ErrConfig, c.Fanout)
	case c.AckTimeout < 1:
		return fmt.Errorf("%w: AckTimeout %d is below 1", ErrConfig, c.AckTimeout)
	case !c.Classic && c.MaxFrame < wire.RowSyncHeaderSize+wire.RunHeaderSize+64:
		return fmt.Errorf("%w: MaxFrame %d cannot hold one row", ErrConfig, c.MaxFrame)
	case c.Classic && c.MaxFrame < wire.ClassicSyncSize:
		return fmt.Errorf("%w: MaxFrame %d cannot hold a classic sync frame", ErrConfig, c.MaxFrame)
	case c.MaxInflightRows < 1:
		return fmt.Errorf("%w: MaxInflightRows %d is below 1", ErrConfig, c.MaxInflightRows)
	case c.MaxTickBytes < c.MaxFrame:
		return fmt.Errorf("%w: MaxTickBytes %d is below MaxFrame", ErrConfig, c.MaxTickBytes)
	case !c.Classic && c.MaxUnackedTickBytes < c.MaxFrame:
		return fmt.Errorf("%w: MaxUnackedTickBytes %d is below MaxFrame", ErrConfig, c.MaxUnackedTickBytes)
	case c.MaxPeers < 1:
		return fmt.Errorf("%w: MaxPeers %d is below 1", ErrConfig, c.MaxPeers)
	case c.ReverifyAfter < 0:
		return fmt.Errorf("%w: ReverifyAfter %d is negative", ErrConfig, c.ReverifyAfter)
	}
	return nil
}
