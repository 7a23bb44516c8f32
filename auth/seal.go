package auth

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/rmbd/rmbd/wire"
)

// Errors of Open. A frame that fails is dropped and counted by reason; it
// changes nothing.
var (
	ErrUnknownKey = errors.New("auth: sealed with a key this node does not have")
	ErrTag        = errors.New("auth: tag does not verify")
	ErrReplay     = errors.New("auth: replayed or stale frame")
)

// Sealer seals the frames one node sends: under the keyring's signing
// key, with the node's sender id and the next sequence number. It is safe
// for concurrent use.
type Sealer struct {
	ring   atomic.Pointer[Keyring]
	sender uint64
	seq    atomic.Uint64
}

// NewSealer returns a sealer with a new random sender id.
func NewSealer(r *Keyring) *Sealer {
	var b [8]byte
	rand.Read(b[:]) // never fails on the platforms Go supports
	s := &Sealer{sender: binary.BigEndian.Uint64(b[:])}
	s.ring.Store(r)
	return s
}

// SetKeyring makes r the keyring from the next frame on.
func (s *Sealer) SetKeyring(r *Keyring) { s.ring.Store(r) }

// Sender returns the sealer's sender id.
func (s *Sealer) Sender() uint64 { return s.sender }

// Seal appends frame, sealed, to dst. frame must be whole and of a type
// that may be sealed.
func (s *Sealer) Seal(dst, frame []byte) ([]byte, error) {
	if len(frame) == 0 || !wire.Sealable(wire.Type(frame[0])) {
		return dst, errors.New("auth: only frames between nodes are sealed")
	}
	k := s.ring.Load().signing()
	seq := s.seq.Add(1)
	dst, start := wire.AppendSealedHead(dst, k.id, s.sender, seq)
	dst = append(dst, frame...)
	dst, err := wire.FinishSealedLength(dst, start)
	if err != nil {
		return dst, err
	}
	var nonce [nonceSize]byte
	binary.BigEndian.PutUint64(nonce[:], s.sender)
	binary.BigEndian.PutUint64(nonce[8:], seq)
	// No plaintext: Seal appends just the tag, over dst[start:], to dst.
	return k.frames.Seal(dst, nonce[:], nil, dst[start:]), nil
}

// Opener checks sealed frames: the tag under any key of the keyring, and
// each sender's sequence against a window of the ones seen, so that a
// frame replayed or too old changes nothing. It is safe for concurrent
// use.
type Opener struct {
	ring atomic.Pointer[Keyring]

	mu      sync.Mutex
	senders map[uint64]*window
	clock   uint64
}

// Replay window limits.
const (
	// windowBits is how far behind the newest sequence a frame may be, to
	// survive reordering: older frames are refused as stale.
	windowBits = 4096
	// maxSenders bounds the senders tracked; the one seen longest ago
	// goes first. Only frames that verify create one.
	maxSenders = 4096
)

// window is what one sender's sequences look like so far.
type window struct {
	high uint64                  // newest sequence seen
	seen [windowBits / 64]uint64 // bit (seq % windowBits): seq within the window seen
	last uint64                  // opener clock when last seen
}

// NewOpener returns an opener with no sender known.
func NewOpener(r *Keyring) *Opener {
	o := &Opener{senders: map[uint64]*window{}}
	o.ring.Store(r)
	return o
}

// SetKeyring makes r the keyring from the next frame on.
func (o *Opener) SetKeyring(r *Keyring) { o.ring.Store(r) }

// Open checks a sealed frame and returns it, its inner frame ready to
// serve. It fails on a frame that does not decode, a key it does not
// have, a tag that does not verify, or a sequence already seen or too old.
func (o *Opener) Open(frame []byte) (wire.Sealed, error) {
	s, err := wire.DecodeSealed(frame)
	if err != nil {
		return wire.Sealed{}, err
	}
	k := o.ring.Load().byID(s.KeyID)
	if k == nil {
		return wire.Sealed{}, fmt.Errorf("%w: key id %08x", ErrUnknownKey, s.KeyID)
	}
	var nonce [nonceSize]byte
	binary.BigEndian.PutUint64(nonce[:], s.Sender)
	binary.BigEndian.PutUint64(nonce[8:], s.Seq)
	if _, err := k.frames.Open(nil, nonce[:], s.Tag, s.Covered); err != nil {
		return wire.Sealed{}, ErrTag
	}
	if !o.fresh(s.Sender, s.Seq) {
		return wire.Sealed{}, fmt.Errorf("%w: sender %016x sequence %d", ErrReplay, s.Sender, s.Seq)
	}
	return s, nil
}

// fresh records seq for sender and reports whether it was new and within
// the window.
func (o *Opener) fresh(sender, seq uint64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.clock++
	w := o.senders[sender]
	if w == nil {
		if len(o.senders) >= maxSenders {
			o.evict()
		}
		w = &window{}
		o.senders[sender] = w
	}
	w.last = o.clock
	return w.take(seq)
}

// take marks seq seen, reporting false if it was, or is older than the
// window allows.
func (w *window) take(seq uint64) bool {
	if seq == 0 {
		return false // sealers count from 1
	}
	if seq > w.high {
		for s := w.high + 1; s <= seq && s <= w.high+windowBits; s++ {
			w.seen[(s%windowBits)/64] &^= 1 << (s % 64) // the slots the window moves over are new again
		}
		w.high = seq
	} else if w.high-seq >= windowBits {
		return false
	}
	i, bit := (seq%windowBits)/64, uint64(1)<<(seq%64)
	if w.seen[i]&bit != 0 {
		return false
	}
	w.seen[i] |= bit
	return true
}

// evict drops the sender seen longest ago.
func (o *Opener) evict() {
	var oldest uint64
	first := true
	var at uint64
	for id, w := range o.senders {
		if first || w.last < at {
			oldest, at, first = id, w.last, false
		}
	}
	delete(o.senders, oldest)
}
