package resp

import (
	"bytes"
	"testing"

	"github.com/tidwall/redcon"
)

// The reader against redcon's (github.com/tidwall/redcon), on what
// redis-benchmark -P 32 sends: 32 pipelined BF.EXISTS per read.
// redcon's reader copies each command and allocates its arguments, and
// buffers a command of any size on the heap; this one slices them out of
// a buffer lent under the node's budget.

func pipeline() []byte {
	var b []byte
	for range 32 {
		b = append(b, "*3\r\n$9\r\nBF.EXISTS\r\n$1\r\nf\r\n$14\r\nkey:0000123456\r\n"...)
	}
	return b
}

// loop is a reader that hands out the same bytes forever.
type loop struct {
	b   []byte
	off int
}

func (l *loop) Read(p []byte) (int, error) {
	n := copy(p, l.b[l.off:])
	l.off = (l.off + n) % len(l.b)
	return n, nil
}

func BenchmarkReader(b *testing.B) {
	rd := NewReader(&loop{b: pipeline()}, 16<<10, DefaultLimits())
	b.ReportAllocs()
	for b.Loop() {
		cmd, err := rd.Next()
		if err != nil || len(cmd.Args) != 3 {
			b.Fatal(err)
		}
	}
}

func BenchmarkRedconReader(b *testing.B) {
	rd := redcon.NewReader(&loop{b: pipeline()})
	b.ReportAllocs()
	for b.Loop() {
		cmd, err := rd.ReadCommand()
		if err != nil || len(cmd.Args) != 3 {
			b.Fatal(err)
		}
	}
}

var sink []byte

func BenchmarkWriter(b *testing.B) {
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendBool(buf[:0], 2, true)
		buf = AppendBulk(buf, []byte("key:0000123456"))
	}
	sink = bytes.Clone(buf)
}
