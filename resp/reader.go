// Package resp reads commands in the Redis serialization protocol (RESP)
// and writes its replies, RESP2 and RESP3: what lets every Redis client
// speak to rmbd.
//
// The Reader is bounded as the node's own frames are: a command's
// arguments are counted and sized against Limits before any memory is
// given to them, the memory a large command takes grows with the bytes
// that arrive (never with the lengths a header promises), comes from a
// budget shared by every connection (wire.Memory) and goes back as soon as
// the command is served. Each byte is parsed once however it is split
// across reads, and a command's arguments are slices of the buffer: no
// allocation per command.
package resp

import (
	"errors"
	"fmt"
	"io"

	"github.com/rmbd/rmbd/wire"
)

// Limits bound what one command may hold.
type Limits struct {
	// MaxArgs bounds the arguments of a command (its array's length).
	MaxArgs int
	// MaxBulk bounds one argument's length.
	MaxBulk int
	// MaxInline bounds an inline command's line (a command typed without
	// RESP framing, as over telnet), and any header line.
	MaxInline int
	// MaxCommand bounds a whole command as it arrives, framing included.
	MaxCommand int
	// PieceArgs and PieceBytes bound a piece of a long command (see
	// Command.More): a piece ends after PieceArgs arguments, or after the
	// argument that brings it to PieceBytes, when more are to come. Zero
	// takes DefaultPieceArgs, DefaultPieceBytes.
	PieceArgs, PieceBytes int
}

// DefaultLimits: a million arguments of up to 512 KiB, 64 KiB inline
// lines, 64 MiB commands, handed over in pieces of 1,024 arguments or
// 256 KiB.
func DefaultLimits() Limits {
	return Limits{MaxArgs: 1 << 20, MaxBulk: 512 << 10, MaxInline: 64 << 10, MaxCommand: 64 << 20,
		PieceArgs: DefaultPieceArgs, PieceBytes: DefaultPieceBytes}
}

// OrDefaults returns l with every field not above zero taken from
// DefaultLimits.
func (l Limits) OrDefaults() Limits {
	d := DefaultLimits()
	for _, f := range []struct{ v, d *int }{{&l.MaxArgs, &d.MaxArgs}, {&l.MaxBulk, &d.MaxBulk}, {&l.MaxInline, &d.MaxInline},
		{&l.MaxCommand, &d.MaxCommand}, {&l.PieceArgs, &d.PieceArgs}, {&l.PieceBytes, &d.PieceBytes}} {
		if *f.v <= 0 {
			*f.v = *f.d
		}
	}
	return l
}

// ProtocolError is a command that cannot be framed: the stream cannot be
// resynchronised after it. Its message is Redis's ("Protocol error: ..."),
// sent as an ERR reply before the connection closes.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return "Protocol error: " + e.Msg }

func protoErr(format string, a ...any) error {
	return &ProtocolError{Msg: fmt.Sprintf(format, a...)}
}

// ErrNoMemory fails a command that needs more buffer memory than the
// Reader's Memory will lend.
var ErrNoMemory = wire.ErrNoMemory

// minBuffer is the smallest buffer a Reader uses.
const minBuffer = 512

// Command is one command: its arguments, the name first. They are slices
// of the Reader's buffer, valid until the next call to Next or Rest.
type Command struct {
	Args [][]byte
	// More is how many of the command's arguments are still to come: a
	// command too long for one piece (PieceArgs, PieceBytes) is handed
	// over in pieces, the first here and the others by Rest. 0 when Args
	// is the whole command.
	More int
}

// Reader cuts a byte stream into commands.
type Reader struct {
	r   io.Reader
	lim Limits
	own []byte // the reader's own buffer
	buf []byte // the buffer in use: own, or borrowed
	off int    // buf[off:end] is read and not yet returned
	end int

	// The command being parsed, from buf[off:]: cur is how far it is
	// parsed; want its arguments' count (-1 before its header);
	// spans their offsets from off, two per argument. A command handed
	// over in pieces: done is the arguments, taken the bytes, of the
	// pieces before this one.
	cur   int
	want  int
	spans []int
	args  [][]byte
	last  int // the bytes of the command or piece last returned, skipped by the next call
	done  int
	taken int
	// rest holds the spans of an inline command's arguments not yet
	// handed over: its line is parsed whole, and handed over in pieces.
	rest []int

	mem    wire.Memory
	busy   int  // the size to borrow when reads fill the buffer
	full   bool // the last read filled the buffer
	before func(begun bool) error
}

// NewReader reads commands from r through a buffer of size bytes (at
// least 512) bounded by lim.
func NewReader(r io.Reader, size int, lim Limits) *Reader {
	own := make([]byte, max(size, minBuffer))
	return &Reader{r: r, lim: lim, own: own, buf: own, want: -1}
}

// Borrow makes larger buffers come from m: one of busy bytes while the
// peer sends faster than the own buffer drains, and room for a command
// larger than that. Next fails with ErrNoMemory when m refuses.
func (rd *Reader) Borrow(m wire.Memory, busy int) { rd.mem, rd.busy = m, busy }

// SetLimits changes the limits for the commands after the one in hand (a
// server loosens them once a client authenticates).
func (rd *Reader) SetLimits(lim Limits) { rd.lim = lim }

// BeforeRead makes f be called before each read from the stream, with
// begun true when part of a command is buffered: a server flushes its
// replies there (every command it holds is answered) and sets the read
// deadline, idle or mid-command. An error from f ends Next with it.
func (rd *Reader) BeforeRead(f func(begun bool) error) { rd.before = f }

// Close gives back borrowed memory; the reader is not to be used again.
func (rd *Reader) Close() {
	rd.giveBack()
	rd.buf, rd.off, rd.end, rd.last = rd.own, 0, 0, 0
}

func (rd *Reader) giveBack() {
	if rd.mem != nil && &rd.buf[0] != &rd.own[0] {
		rd.mem.Put(rd.buf)
	}
}

// Next returns the next command. At the end of the stream between
// commands it returns io.EOF; inside one io.ErrUnexpectedEOF; for bytes
// that cannot be a command a *ProtocolError.
func (rd *Reader) Next() (Command, error) {
	for rd.inPieces() { // the rest of a command not taken is skipped
		if _, err := rd.Rest(); err != nil {
			return Command{}, err
		}
	}
	return rd.next()
}

// next returns the next command, or piece of one.
func (rd *Reader) next() (Command, error) {
	rd.off += rd.last
	rd.last = 0
	for {
		done, err := rd.parse()
		if err != nil {
			return Command{}, err
		}
		if done {
			return rd.command(), nil
		}
		if err := rd.fill(); err != nil {
			return Command{}, err
		}
	}
}

// command slices the parsed command, or piece of one, out of the buffer
// and resets the parse for what follows.
func (rd *Reader) command() Command {
	b := rd.buf[rd.off:]
	if max := rd.pieceArgs(); len(rd.spans) > 2*max { // an inline line longer than a piece
		rd.rest = append(rd.rest[:0], rd.spans[2*max:]...)
		rd.spans = rd.spans[:2*max]
	}
	if len(rd.rest) > 0 {
		args := rd.args[:0]
		for i := 0; i < len(rd.spans); i += 2 {
			args = append(args, b[rd.spans[i]:rd.spans[i+1]:rd.spans[i+1]])
		}
		rd.args = args
		rd.done += len(args)
		rd.spans = append(rd.spans[:0], rd.rest...) // the next piece, over the same line
		rd.rest = rd.rest[:0]
		return Command{Args: args, More: rd.want - rd.done}
	}
	args := rd.args[:0]
	for i := 0; i < len(rd.spans); i += 2 {
		args = append(args, b[rd.spans[i]:rd.spans[i+1]:rd.spans[i+1]])
	}
	rd.args = args
	rd.last = rd.cur
	more := rd.want - rd.done - len(args)
	if more > 0 {
		rd.done += len(args)
		rd.taken += rd.cur
	} else {
		rd.want, rd.done, rd.taken = -1, 0, 0
	}
	rd.cur, rd.spans = 0, rd.spans[:0]
	return Command{Args: args, More: more}
}

// parse goes on parsing the command at buf[off:], from cur. It reports
// whether the command is complete.
func (rd *Reader) parse() (bool, error) {
	b := rd.buf[rd.off:rd.end]
	for {
		if rd.want >= 0 && rd.pieceDone() {
			return true, nil
		}
		if rd.cur >= len(b) {
			return false, nil
		}
		if rd.want < 0 {
			if b[0] != '*' {
				return rd.inline(b)
			}
			n, next, ok, err := rd.header(b, rd.cur, '*')
			if !ok || err != nil {
				return false, err
			}
			switch {
			case n > int64(rd.lim.MaxArgs):
				return false, protoErr("invalid multibulk length (%d arguments; at most %d)", n, rd.lim.MaxArgs)
			case n <= 0: // an empty command: Redis skips it
				rd.off += next
				rd.cur = 0
				b = rd.buf[rd.off:rd.end]
				continue
			}
			rd.want, rd.cur = int(n), next
			continue
		}
		if b[rd.cur] != '$' {
			return false, protoErr("expected '$', got '%c'", b[rd.cur])
		}
		n, next, ok, err := rd.header(b, rd.cur, '$')
		if !ok || err != nil {
			return false, err
		}
		if n < 0 || n > int64(rd.lim.MaxBulk) {
			return false, protoErr("invalid bulk length (%d bytes; at most %d)", n, rd.lim.MaxBulk)
		}
		end := next + int(n) + 2
		if rd.taken+end > rd.lim.MaxCommand {
			return false, protoErr("command too large (more than %d bytes)", rd.lim.MaxCommand)
		}
		if end > len(b) {
			return false, nil
		}
		if b[end-2] != '\r' || b[end-1] != '\n' {
			return false, protoErr("invalid bulk length (the bulk does not end where it says)")
		}
		rd.spans = append(rd.spans, next, next+int(n))
		rd.cur = end
	}
}

// header parses the line "<kind><number>\r\n" at b[at:]: the number and
// where the line ends. ok is false until the whole line is buffered.
func (rd *Reader) header(b []byte, at int, kind byte) (n int64, next int, ok bool, err error) {
	i := at + 1
	for ; i < len(b) && b[i] != '\n'; i++ {
		if i-at > 20 {
			if kind == '*' {
				return 0, 0, false, protoErr("too big mbulk count string")
			}
			return 0, 0, false, protoErr("too big bulk count string")
		}
	}
	if i == len(b) {
		return 0, 0, false, nil
	}
	digits := b[at+1 : i]
	if len(digits) == 0 || digits[len(digits)-1] != '\r' {
		return 0, 0, false, rd.badLength(kind)
	}
	digits = digits[:len(digits)-1]
	neg := len(digits) > 0 && digits[0] == '-'
	if neg {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 18 {
		return 0, 0, false, rd.badLength(kind)
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, 0, false, rd.badLength(kind)
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, i + 1, true, nil
}

func (rd *Reader) badLength(kind byte) error {
	if kind == '*' {
		return protoErr("invalid multibulk length")
	}
	return protoErr("invalid bulk length")
}

// inline parses a command typed as one line: arguments separated by
// spaces, with "double" or 'single' quotes around arguments that hold
// spaces. The arguments are rewritten in place, unquoted.
func (rd *Reader) inline(b []byte) (bool, error) {
	i := rd.cur
	for ; i < len(b) && b[i] != '\n'; i++ {
	}
	if i == len(b) {
		rd.cur = i
		if i > rd.lim.MaxInline {
			return false, protoErr("too big inline request")
		}
		return false, nil
	}
	if i > rd.lim.MaxInline {
		return false, protoErr("too big inline request")
	}
	line := b[:i]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	spans, err := splitInline(line, rd.spans[:0])
	if err != nil {
		return false, err
	}
	rd.spans = spans
	if len(spans) == 0 { // an empty line: skipped
		rd.off += i + 1
		rd.cur = 0
		return rd.parse()
	}
	if len(spans)/2 > rd.lim.MaxArgs {
		return false, protoErr("invalid multibulk length (%d arguments; at most %d)", len(spans)/2, rd.lim.MaxArgs)
	}
	rd.want, rd.cur = len(spans)/2, i+1
	return true, nil
}

// splitInline unquotes line's arguments in place, appending each one's
// span to spans.
func splitInline(line []byte, spans []int) ([]int, error) {
	i := 0
	for {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		if i == len(line) {
			return spans, nil
		}
		start, w := i, i
		if q := line[i]; q == '"' || q == '\'' {
			i++
			closed := false
			for i < len(line) {
				c := line[i]
				if c == '\\' && q == '"' && i+1 < len(line) {
					i++
					c = unescape(line[i])
				} else if c == q {
					closed = true
					i++
					break
				}
				line[w] = c
				w++
				i++
			}
			if !closed || (i < len(line) && line[i] != ' ' && line[i] != '\t') {
				return nil, protoErr("unbalanced quotes in request")
			}
		} else {
			for i < len(line) && line[i] != ' ' && line[i] != '\t' {
				i++
			}
			w = i
		}
		spans = append(spans, start, w)
	}
}

func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'a':
		return '\a'
	case 'b':
		return '\b'
	}
	return c
}

// fill reads more of the stream, making room first: the command in hand
// moves to the front of the buffer, or to a larger buffer when it fills
// this one.
func (rd *Reader) fill() error {
	if rd.off == rd.end {
		rd.off, rd.end = 0, 0
		if rd.want < 0 {
			rd.idle()
		}
	}
	held := rd.end - rd.off
	switch {
	case held == len(rd.buf):
		if held >= rd.lim.MaxCommand {
			return protoErr("command too large (more than %d bytes)", rd.lim.MaxCommand)
		}
		if err := rd.grow(min(2*len(rd.buf), rd.lim.MaxCommand)); err != nil {
			return err
		}
	case rd.full && rd.mem != nil && len(rd.buf) < rd.busy:
		if err := rd.grow(rd.busy); err != nil && !errors.Is(err, ErrNoMemory) {
			return err
		}
	case rd.off > 0 && rd.end == len(rd.buf):
		rd.end = copy(rd.buf, rd.buf[rd.off:rd.end])
		rd.off = 0
	}
	if rd.before != nil {
		if err := rd.before(rd.end > rd.off || rd.want >= 0); err != nil {
			return err
		}
	}
	n, err := rd.r.Read(rd.buf[rd.end:])
	rd.full = rd.end+n == len(rd.buf)
	rd.end += n
	if n > 0 {
		return nil // the data first; an error comes again on the next read
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	if errors.Is(err, io.EOF) && (rd.end > rd.off || rd.want >= 0) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// grow moves the bytes in hand to a buffer of size bytes.
func (rd *Reader) grow(size int) error {
	var b []byte
	if rd.mem != nil {
		var ok bool
		if b, ok = rd.mem.Get(size); !ok {
			return ErrNoMemory
		}
		b = b[:cap(b)]
	} else {
		b = make([]byte, size)
	}
	rd.end = copy(b, rd.buf[rd.off:rd.end])
	rd.off = 0
	rd.giveBack()
	rd.buf, rd.full = b, false
	return nil
}

// A command of many arguments is handed over in pieces, so that what a
// connection holds of it is a piece, however long the command: its
// buffer, and the slices of it that are the arguments. A piece's
// arguments are slices of the buffer, as a whole command's are.
const (
	DefaultPieceArgs  = 1024
	DefaultPieceBytes = 256 << 10
)

// keepArgs is how many arguments' worth of room the reader keeps between
// commands; a long command's is dropped once it is served.
const keepArgs = 64

// Rest returns the next piece of the command Next returned with More > 0:
// its next arguments, valid until the next call to Rest or Next, and in
// More how many are still to come after them. Without a command in pieces
// it returns an empty Command. Next skips the pieces not taken.
func (rd *Reader) Rest() (Command, error) {
	if !rd.inPieces() {
		return Command{}, nil
	}
	return rd.next()
}

// inPieces reports whether a command is being handed over in pieces.
func (rd *Reader) inPieces() bool { return rd.done > 0 }

// pieceDone reports whether the arguments parsed complete the command, or
// a piece of it.
func (rd *Reader) pieceDone() bool {
	n := len(rd.spans) / 2
	if rd.done+n == rd.want {
		return true
	}
	args, bytes := rd.pieceArgs(), rd.lim.PieceBytes
	if bytes <= 0 {
		bytes = DefaultPieceBytes
	}
	return n >= args || (n > 0 && rd.cur >= bytes)
}

// pieceArgs is the most arguments a piece holds.
func (rd *Reader) pieceArgs() int {
	if rd.lim.PieceArgs <= 0 {
		return DefaultPieceArgs
	}
	return rd.lim.PieceArgs
}

// idle gives back, between commands, what the reader holds beyond its own
// buffer: a borrowed buffer (unless the peer keeps it full), and the room
// a long command's arguments took.
func (rd *Reader) idle() {
	if rd.mem != nil && &rd.buf[0] != &rd.own[0] && !rd.full {
		rd.giveBack()
		rd.buf = rd.own
	}
	if cap(rd.args) > keepArgs {
		rd.args, rd.spans = nil, nil
	}
}
