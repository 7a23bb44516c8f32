package wire

import (
	"errors"
	"io"
)

// FrameReader cuts a byte stream (a TCP connection) into frames: classic
// frames by their fixed size, extended frames by their header. It is the
// one stream reader of the project: the node's connections, its pulls,
// the client and the load tool all read through it.
//
// It reads through a buffer of its own. A frame larger than that is read
// into memory that grows with the bytes that arrive, never with the
// length a header promises. With Borrow, that memory — and a larger
// buffer while the peer sends faster than the small one drains — is
// lent by a Memory under a budget, and given back as soon as it is not
// needed: an idle connection holds only its own small buffer.
type FrameReader struct {
	r       io.Reader
	own     []byte // the reader's own buffer
	buf     []byte // the buffer in use: own, or borrowed while busy
	off     int    // buf[off:end] is read and not yet returned
	end     int
	pending int  // bytes of the last frame returned, from off, skipped by the next call
	full    bool // the last read filled the buffer: the peer sends fast

	big         []byte // a large frame, read exactly
	bigBorrowed bool   // big came from mem

	mem    Memory
	busy   int    // the size to borrow while busy
	onWait func() // called once a frame has begun and more of it must be waited for
	waited bool
}

// Memory lends buffers: Get a buffer of at least size bytes, or false
// when its budget is spent; Put one back. *bufpool.Pool is one.
type Memory interface {
	Get(size int) ([]byte, bool)
	Put(b []byte)
}

// ErrNoMemory fails a read that needs more memory than the reader's
// Memory will lend: the connection asking for more is the one to close.
var ErrNoMemory = errors.New("wire: no buffer memory left for this frame")

// minStreamBuffer is the smallest buffer a FrameReader uses: an extended
// header and any classic frame fit in it.
const minStreamBuffer = 512

// NewFrameReader reads frames from r through a buffer of size bytes (at
// least 512).
func NewFrameReader(r io.Reader, size int) *FrameReader {
	own := make([]byte, max(size, minStreamBuffer))
	return &FrameReader{r: r, own: own, buf: own}
}

// Borrow makes large frames, and a buffer of busy bytes while the peer
// sends fast, come from m; Next fails with ErrNoMemory when m refuses.
func (fr *FrameReader) Borrow(m Memory, busy int) { fr.mem, fr.busy = m, busy }

// OnWait makes f be called when a frame has begun and the reader must
// wait for more of it (once a frame): a server bounds how long a frame
// may take to arrive from there.
func (fr *FrameReader) OnWait(f func()) { fr.onWait = f }

// Next returns the next frame. The slice is valid until the next call. At
// the end of the stream between frames it returns io.EOF; in the middle of
// a frame io.ErrUnexpectedEOF; for a type byte or a length that cannot be
// framed a *FrameError, after which the stream cannot be resynchronised.
func (fr *FrameReader) Next() ([]byte, error) {
	fr.discard()
	if err := fr.need(1); err != nil {
		return nil, err
	}
	head := fr.buf[fr.off:fr.end]
	if Type(head[0]).Extended() && len(head) < HeaderSize {
		if err := fr.need(HeaderSize); err != nil {
			return nil, unexpected(err)
		}
		head = fr.buf[fr.off:fr.end]
	}
	size, err := FrameLen(head)
	if err != nil {
		return nil, err
	}
	return fr.read(size)
}

// Fixed returns the next n bytes, for the one reply that is not a frame:
// the classic has reply, which has no type byte. The slice is valid until
// the next call.
func (fr *FrameReader) Fixed(n int) ([]byte, error) {
	fr.discard()
	if n <= 0 || n > MaxFrame {
		return nil, frameErr(0, 0, ErrTooLarge)
	}
	if err := fr.need(1); err != nil {
		return nil, err
	}
	return fr.read(n)
}

// Buffered returns how many bytes have been read from the stream and not
// yet returned: a server flushes its replies when none are left.
func (fr *FrameReader) Buffered() int { return fr.end - fr.off - fr.pending }

// Release gives borrowed memory back when nothing is buffered: a server
// calls it before it waits for a connection's next request.
func (fr *FrameReader) Release() {
	fr.discard()
	if fr.off != fr.end {
		return
	}
	fr.dropBig()
	if &fr.buf[0] != &fr.own[0] {
		fr.mem.Put(fr.buf)
		fr.buf = fr.own
	}
	fr.off, fr.end, fr.full = 0, 0, false
}

// Close gives back all borrowed memory, buffered bytes or not; the reader
// is not to be used again.
func (fr *FrameReader) Close() {
	fr.dropBig()
	if fr.mem != nil && &fr.buf[0] != &fr.own[0] {
		fr.mem.Put(fr.buf)
	}
	fr.buf, fr.off, fr.end, fr.pending = fr.own, 0, 0, 0
}

// Detach makes frame, the last one Next returned, the caller's to keep:
// the reader reads later frames into other memory. A frame larger than
// the reader's buffer is handed over as it is (handed reports it: the
// reader has no memory for large frames until Reuse gives it some); a
// smaller one, or one in borrowed memory, is copied. A stage that works
// on a frame while the next is read uses it.
func (fr *FrameReader) Detach(frame []byte) (kept []byte, handed bool) {
	if len(frame) > 0 && cap(fr.big) > 0 && !fr.bigBorrowed && &frame[0] == &fr.big[:1][0] {
		fr.big, fr.bigBorrowed = nil, false
		return frame, true
	}
	return append([]byte(nil), frame...), false
}

// Reuse gives the reader memory to read large frames into, typically a
// frame handed over by Detach and done with. The caller must not touch b
// afterwards.
func (fr *FrameReader) Reuse(b []byte) {
	if cap(b) > cap(fr.big) {
		fr.dropBig()
		fr.big = b[:0]
	}
}

// discard skips the last frame returned.
func (fr *FrameReader) discard() {
	fr.off += fr.pending
	fr.pending, fr.waited = 0, false
	if fr.off == fr.end {
		fr.off, fr.end = 0, 0
	}
	if fr.bigBorrowed { // a large frame's memory goes back once it is served
		fr.dropBig()
	}
}

func (fr *FrameReader) dropBig() {
	if fr.bigBorrowed {
		fr.mem.Put(fr.big)
	}
	fr.big, fr.bigBorrowed = nil, false
}

// need reads until n bytes (at most the buffer's size) are buffered.
func (fr *FrameReader) need(n int) error {
	for fr.end-fr.off < n {
		if fr.off > 0 && len(fr.buf)-fr.off < n {
			fr.end = copy(fr.buf, fr.buf[fr.off:fr.end])
			fr.off = 0
		}
		fr.growIfBusy()
		if fr.end > fr.off { // a frame has begun
			fr.wait()
		}
		m, err := fr.r.Read(fr.buf[fr.end:])
		fr.full = fr.end+m == len(fr.buf)
		fr.end += m
		if fr.end-fr.off >= n {
			return nil // the data first; an error comes again on the next read
		}
		if err != nil {
			if fr.end > fr.off {
				return unexpected(err)
			}
			return err
		}
	}
	return nil
}

// wait calls onWait once per frame, when the frame has begun and more
// of it is to be read.
func (fr *FrameReader) wait() {
	if !fr.waited && fr.onWait != nil {
		fr.waited = true
		fr.onWait()
	}
}

// growIfBusy moves to a borrowed buffer of the busy size when the last
// read filled the reader's own: the peer sends faster than a small
// buffer drains. Refused, it goes on with the small one.
func (fr *FrameReader) growIfBusy() {
	if !fr.full || fr.mem == nil || len(fr.buf) >= fr.busy {
		return
	}
	b, ok := fr.mem.Get(fr.busy)
	if !ok {
		return
	}
	b = b[:cap(b)]
	fr.end = copy(b, fr.buf[fr.off:fr.end])
	fr.off = 0
	if &fr.buf[0] != &fr.own[0] {
		fr.mem.Put(fr.buf)
	}
	fr.buf, fr.full = b, false
}

// read returns the next size bytes, at least one of which is buffered.
func (fr *FrameReader) read(size int) ([]byte, error) {
	if size <= len(fr.buf) {
		if err := fr.need(size); err != nil {
			return nil, unexpected(err)
		}
		fr.pending = size
		return fr.buf[fr.off : fr.off+size], nil
	}
	// Larger than the buffer: read it exactly, into memory that grows
	// with what arrives — a header's promise costs nothing until the bytes
	// behind it come.
	buf, err := fr.grow(fr.big[:0], 0, min(size, max(2*(fr.end-fr.off), len(fr.own))))
	if err != nil {
		return nil, err
	}
	buf = append(buf, fr.buf[fr.off:fr.end]...)
	fr.off, fr.end = 0, 0
	for len(buf) < size {
		if len(buf) == cap(buf) {
			if buf, err = fr.grow(buf, len(buf), min(size, 2*cap(buf))); err != nil {
				return nil, err
			}
		}
		fr.wait()
		n, err := io.ReadFull(fr.r, buf[len(buf):min(cap(buf), size)]) // never past the frame
		buf = buf[:len(buf)+n]
		if err != nil {
			fr.big = buf[:0]
			return nil, unexpected(err)
		}
	}
	fr.big = buf[:0]
	return buf, nil
}

// grow returns buf with room for want bytes, keeping its first n bytes:
// buf itself if it has the room, else new memory (borrowed with a
// Memory), buf's given back.
func (fr *FrameReader) grow(buf []byte, n, want int) ([]byte, error) {
	if cap(buf) >= want {
		return buf[:n], nil
	}
	var grown []byte
	if fr.mem != nil {
		b, ok := fr.mem.Get(want)
		if !ok {
			fr.big = buf[:0]
			return nil, ErrNoMemory
		}
		grown = b[:n]
	} else {
		grown = make([]byte, n, want)
	}
	copy(grown, buf[:n])
	fr.big = buf
	fr.dropBig()
	fr.big, fr.bigBorrowed = grown[:0], fr.mem != nil
	return grown, nil
}

// unexpected maps the end of the stream inside a frame to
// io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
