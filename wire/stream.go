package wire

import (
	"bufio"
	"errors"
	"io"
)

// FrameReader cuts a byte stream (a TCP connection) into frames: classic
// frames by their fixed size, extended frames by their header. It is the
// one stream reader of the project: the node's connections, its pulls,
// the client and the load tool all read through it.
//
// A frame that fits the reader's buffer is returned without copying; a
// larger one is read into a buffer that grows with the bytes that arrive,
// never with the length a header promises.
type FrameReader struct {
	br      *bufio.Reader
	big     []byte
	pending int // bytes of the last frame still buffered, discarded by the next call
}

// minStreamBuffer is the smallest buffer a FrameReader uses: an extended
// header and any classic frame fit in it.
const minStreamBuffer = 512

// NewFrameReader reads frames from r through a buffer of size bytes (at
// least 512).
func NewFrameReader(r io.Reader, size int) *FrameReader {
	return &FrameReader{br: bufio.NewReaderSize(r, max(size, minStreamBuffer))}
}

// Next returns the next frame. The slice is valid until the next call. At
// the end of the stream between frames it returns io.EOF; in the middle of
// a frame io.ErrUnexpectedEOF; for a type byte or a length that cannot be
// framed a *FrameError, after which the stream cannot be resynchronised.
func (fr *FrameReader) Next() ([]byte, error) {
	fr.discard()
	head, err := fr.br.Peek(1)
	if err != nil {
		return nil, err
	}
	if Type(head[0]).Extended() {
		if head, err = fr.br.Peek(HeaderSize); err != nil {
			return nil, unexpected(err)
		}
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
	if _, err := fr.br.Peek(1); err != nil {
		return nil, err
	}
	return fr.read(n)
}

// Detach makes frame, the last one Next returned, the caller's to keep:
// the reader reads later frames into other memory. A frame larger than
// the reader's buffer is handed over as it is (handed reports it: the
// reader has no memory for large frames until Reuse gives it some); a
// smaller one is copied. A stage that works on a frame while the next is
// read uses it.
func (fr *FrameReader) Detach(frame []byte) (kept []byte, handed bool) {
	if len(frame) > 0 && cap(fr.big) > 0 && &frame[0] == &fr.big[:1][0] {
		fr.big = nil
		return frame, true
	}
	return append([]byte(nil), frame...), false
}

// Reuse gives the reader memory to read large frames into, typically a
// frame handed over by Detach and done with. The caller must not touch b
// afterwards.
func (fr *FrameReader) Reuse(b []byte) {
	if cap(b) > cap(fr.big) {
		fr.big = b[:0]
	}
}

// Buffered returns how many bytes have been read from the stream and not
// yet returned: a server flushes its replies when none are left.
func (fr *FrameReader) Buffered() int { return fr.br.Buffered() - fr.pending }

func (fr *FrameReader) discard() {
	if fr.pending > 0 {
		fr.br.Discard(fr.pending)
		fr.pending = 0
	}
}

// read returns the next size bytes, at least one of which is buffered.
func (fr *FrameReader) read(size int) ([]byte, error) {
	if size <= fr.br.Size() {
		b, err := fr.br.Peek(size)
		if err != nil {
			return nil, unexpected(err)
		}
		fr.pending = size
		return b, nil
	}
	// Grow with what arrives: a header's promise costs nothing until the
	// bytes behind it come.
	buf := fr.big[:0]
	for len(buf) < size {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(size, max(2*cap(buf), fr.br.Size())))
			copy(grown, buf)
			buf = grown
		}
		n, err := io.ReadFull(fr.br, buf[len(buf):min(cap(buf), size)]) // never past the frame
		buf = buf[:len(buf)+n]
		if err != nil {
			fr.big = buf[:0]
			return nil, unexpected(err)
		}
	}
	fr.big = buf[:0]
	return buf, nil
}

// unexpected maps the end of the stream inside a frame to
// io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
