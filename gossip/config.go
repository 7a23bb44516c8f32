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
	// PruneAfter removes a peer after this many rounds without an ack.
	PruneAfter int
	// MaxFrame bounds the size of each emitted frame (a UDP datagram).
	MaxFrame int
	// MaxRowsPerTick bounds the rows sent to one peer in one tick; a larger
	// round continues on the next tick.
	MaxRowsPerTick int
	// MaxPeers bounds the peer table; AddPeer refuses more.
	MaxPeers int
}

// DefaultConfig is the default profile: delta sync, prune after 10 missed
// rounds, frames that fit a 1,400-byte datagram, at most 8,192 rows (512
// KiB of blocked rows) per peer per tick, 1,024 peers.
func DefaultConfig() Config {
	return Config{
		PruneAfter:     10,
		MaxFrame:       wire.MaxDatagram,
		MaxRowsPerTick: 8192,
		MaxPeers:       1024,
	}
}

// ClassicConfig is the original rmbd's behaviour: every row every tick,
// prune after one missed round.
func ClassicConfig() Config {
	c := DefaultConfig()
	c.Classic = true
	c.PruneAfter = 1
	return c
}

func (c Config) validate() error {
	switch {
	case c.PruneAfter < 1:
		return fmt.Errorf("%w: PruneAfter %d is below 1", ErrConfig, c.PruneAfter)
	case !c.Classic && c.MaxFrame < wire.RowSyncHeaderSize+wire.RunHeaderSize+64:
		return fmt.Errorf("%w: MaxFrame %d cannot hold one row", ErrConfig, c.MaxFrame)
	case c.Classic && c.MaxFrame < wire.ClassicSyncSize:
		return fmt.Errorf("%w: MaxFrame %d cannot hold a classic sync frame", ErrConfig, c.MaxFrame)
	case c.MaxRowsPerTick < 1:
		return fmt.Errorf("%w: MaxRowsPerTick %d is below 1", ErrConfig, c.MaxRowsPerTick)
	case c.MaxPeers < 1:
		return fmt.Errorf("%w: MaxPeers %d is below 1", ErrConfig, c.MaxPeers)
	}
	return nil
}
