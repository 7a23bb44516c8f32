package auth

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rmbd/rmbd/wire"
)

// Errors of Open. A frame that fails is dropped and counted by reason; it
// changes nothing.
var (
	ErrUnknownKey = errors.New("auth: sealed with a key this node does not have")
	ErrTag        = errors.New("auth: tag does not verify")
	ErrReplay     = errors.New("auth: replayed or stale frame")
	// ErrStale is the ErrReplay of a frame sealed too long ago, or by a
	// clock too far ahead: replayed late, or the clocks are apart.
	ErrStale = fmt.Errorf("%w (sealed too long ago, or by a clock too far ahead)", ErrReplay)
	// ErrReceiver: the frame was sealed for another receiver — another
	// node, this node before it restarted, or a sender that does not know
	// it yet (receiver 0). Open returns the frame with it: its sender is
	// owed a hint, sealed for it, that says who this node is.
	ErrReceiver = errors.New("auth: sealed for another receiver")
)

// Freshness. A sealed frame carries its sender's clock; a receiver takes
// it only while it is young, so that a frame recorded and replayed later
// changes nothing, even after the receiver restarted and forgot the
// sequences it saw.
const (
	// MaxAge is how old a frame may be when it is opened.
	MaxAge = 30 * time.Second
	// MaxSkew is how far apart the clocks of two members may be: a frame
	// may seem this much newer than now, or MaxAge+MaxSkew old.
	MaxSkew = 10 * time.Second
)

// Sealer seals the frames one node sends: under the keyring's signing
// key, with the node's sender id, the next sequence number, the
// receiver's id and the time. It is safe for concurrent use.
type Sealer struct {
	ring   atomic.Pointer[Keyring]
	sender uint64
	seq    atomic.Uint64
}

// NewSealer returns a sealer with a new random sender id.
func NewSealer(r *Keyring) *Sealer {
	var b [8]byte
	for binary.BigEndian.Uint64(b[:]) == 0 { // 0 means "receiver unknown"
		rand.Read(b[:]) // never fails on the platforms Go supports
	}
	s := &Sealer{sender: binary.BigEndian.Uint64(b[:])}
	s.ring.Store(r)
	return s
}

// SetKeyring makes r the keyring from the next frame on.
func (s *Sealer) SetKeyring(r *Keyring) { s.ring.Store(r) }

// Sender returns the sealer's sender id: the id other nodes seal for.
func (s *Sealer) Sender() uint64 { return s.sender }

// Seal appends frame, sealed for the receiver whose id is to (0 if
// unknown: the receiver refuses it and says who it is) at now, to dst.
// frame must be whole and of a type that may be sealed.
func (s *Sealer) Seal(dst, frame []byte, to uint64, now time.Time) ([]byte, error) {
	if len(frame) == 0 || !wire.Sealable(wire.Type(frame[0])) {
		return dst, errors.New("auth: only frames between nodes are sealed")
	}
	k := s.ring.Load().signing()
	seq := s.seq.Add(1)
	dst, start := wire.AppendSealedHead(dst, wire.SealedHead{KeyID: k.id, Sender: s.sender, Seq: seq, To: to, Time: now.UnixMilli()})
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

// Opener checks sealed frames: the tag under any key of the keyring, the
// receiver (this node), the time, and each sender's sequence against a
// window of the ones seen, so that a frame replayed — to this node, to
// another, or after a restart — changes nothing. It is safe for
// concurrent use.
type Opener struct {
	ring atomic.Pointer[Keyring]
	self uint64 // the id frames for this node are sealed for

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

// NewOpener returns an opener of frames sealed for self (the node's own
// Sealer's Sender), with no sender known.
func NewOpener(r *Keyring, self uint64) *Opener {
	o := &Opener{self: self, senders: map[uint64]*window{}}
	o.ring.Store(r)
	return o
}

// SetKeyring makes r the keyring from the next frame on.
func (o *Opener) SetKeyring(r *Keyring) { o.ring.Store(r) }

// Open checks a sealed frame at now and returns it, its inner frame ready
// to serve. It fails on a frame that does not decode, a key it does not
// have, a tag that does not verify (those first: only a key holder's
// frame is looked at further), then on a frame sealed for another
// receiver (ErrReceiver, with the frame), too old or too new (ErrReplay),
// or a sequence already seen or behind the window (ErrReplay).
func (o *Opener) Open(frame []byte, now time.Time) (wire.Sealed, error) {
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
	if s.To != o.self {
		return s, fmt.Errorf("%w: sealed for %016x by sender %016x", ErrReceiver, s.To, s.Sender)
	}
	if age := now.Sub(time.UnixMilli(s.Time)); age > MaxAge+MaxSkew || age < -MaxSkew {
		return wire.Sealed{}, fmt.Errorf("%w: sealed %v ago by sender %016x (at most %v, clocks %v apart)", ErrStale, age.Round(time.Millisecond), s.Sender, MaxAge, MaxSkew)
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
