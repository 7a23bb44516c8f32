package gossip

import (
	"iter"
	"net/netip"
)

// Outbox collects the frames a Gossip decides to send, each with its
// address, in one buffer reused from call to call. Tick and RowAck only
// append to it; the owner sends its frames after letting go of whatever
// lock serialises the Gossip, so that no socket write ever happens under
// that lock (raft hands out its messages the same way). The zero value is
// ready to use.
type Outbox struct {
	buf   []byte
	msgs  []outMsg
	plain []outMsg // frames sent as they are, never sealed (challenges)
}

type outMsg struct {
	to         netip.AddrPort
	start, end int
}

// Len returns the number of frames, plain ones included.
func (o *Outbox) Len() int { return len(o.msgs) + len(o.plain) }

// Size returns the bytes of all frames.
func (o *Outbox) Size() int { return len(o.buf) }

// All yields each frame in the order it was decided, with its address,
// but for the plain ones. Frames are valid until Reset.
func (o *Outbox) All() iter.Seq2[netip.AddrPort, []byte] { return o.each(o.msgs) }

// Plain yields the frames to send as they are, never sealed: challenges,
// which the original rmbd must read.
func (o *Outbox) Plain() iter.Seq2[netip.AddrPort, []byte] { return o.each(o.plain) }

func (o *Outbox) each(msgs []outMsg) iter.Seq2[netip.AddrPort, []byte] {
	return func(yield func(netip.AddrPort, []byte) bool) {
		for _, m := range msgs {
			if !yield(m.to, o.buf[m.start:m.end:m.end]) {
				return
			}
		}
	}
}

// Reset empties the outbox, keeping its memory.
func (o *Outbox) Reset() {
	o.buf = o.buf[:0]
	o.msgs = o.msgs[:0]
	o.plain = o.plain[:0]
}

// Add appends a copy of frame addressed to to.
func (o *Outbox) Add(to netip.AddrPort, frame []byte) {
	start := len(o.buf)
	o.buf = append(o.buf, frame...)
	o.msgs = append(o.msgs, outMsg{to: to, start: start, end: len(o.buf)})
}

// AddPlain appends a copy of frame addressed to to, to be sent as it is.
func (o *Outbox) AddPlain(to netip.AddrPort, frame []byte) {
	start := len(o.buf)
	o.buf = append(o.buf, frame...)
	o.plain = append(o.plain, outMsg{to: to, start: start, end: len(o.buf)})
}

// commit records the bytes appended to buf since start as a frame to to.
func (o *Outbox) commit(to netip.AddrPort, start int) {
	o.msgs = append(o.msgs, outMsg{to: to, start: start, end: len(o.buf)})
}
