package resp

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/rmbd/rmbd/internal/bufpool"
)

// FuzzReader: whatever the bytes, and wherever the stream splits them,
// the reader returns the same commands and the same end, within its
// limits, whether it hands long commands over whole or in pieces, and
// gives back every byte it borrowed.
func FuzzReader(f *testing.F) {
	for _, s := range []string{
		"*2\r\n$4\r\nPING\r\n$2\r\nhi\r\n",
		"*3\r\n$6\r\nBF.ADD\r\n$1\r\nf\r\n$0\r\n\r\nPING\r\n",
		"ECHO \"a\\tb\" 'c'\n",
		"*0\r\n*-1\r\n*1\r\n$-1\r\n",
		"*1\r\n$99999999999999999999\r\n",
		"\r\n\n*1\r\n$4\r\nPI",
		"*7\r\n$7\r\nBF.MADD\r\n$1\r\nf\r\n$1\r\na\r\n$2\r\nbb\r\n$40\r\n0123456789012345678901234567890123456789\r\n$0\r\n\r\n$1\r\nc\r\n*1\r\n$4\r\nPING\r\n",
		"*5\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n$1\r\ne\r\n*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\n",
	} {
		f.Add([]byte(s), uint16(3))
	}
	lim := Limits{MaxArgs: 64, MaxBulk: 256, MaxInline: 128, MaxCommand: 2048, PieceArgs: 64, PieceBytes: 4096}
	pieces := lim
	pieces.PieceArgs, pieces.PieceBytes = 3, 40
	f.Fuzz(func(t *testing.T, in []byte, cut uint16) {
		whole, wholeErr := collect(bytes.NewReader(in), lim, nil)
		cuts := []int{int(cut) % (len(in) + 1)}
		if len(in) <= 512 { // short: split at every point
			cuts = cuts[:0]
			for at := range len(in) + 1 {
				cuts = append(cuts, at)
			}
		}
		for _, at := range cuts {
			pool := bufpool.New(1<<20, 0)
			split, splitErr := collect(io.MultiReader(bytes.NewReader(in[:at]), bytes.NewReader(in[at:])), pieces, pool)
			if !bytes.Equal(whole, split) {
				t.Fatalf("split at %d: %q, whole: %q", at, split, whole)
			}
			if (wholeErr == nil) != (splitErr == nil) || (wholeErr != nil && wholeErr.Error() != splitErr.Error()) {
				t.Fatalf("split at %d ends with %v, whole with %v", at, splitErr, wholeErr)
			}
			if pool.Stats().Lent != 0 {
				t.Fatalf("%d bytes still lent", pool.Stats().Lent)
			}
		}
	})
}

// collect reads every command, its pieces joined, serialised back as
// arrays of bulks, and the error that ended the stream (nil for io.EOF).
func collect(r io.Reader, lim Limits, mem *bufpool.Pool) ([]byte, error) {
	rd := NewReader(r, 16, lim)
	if mem != nil {
		rd.Borrow(mem, 512)
	}
	defer rd.Close()
	var out []byte
	for {
		cmd, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		if len(cmd.Args)+cmd.More > lim.MaxArgs {
			return out, errors.New("a command out of its limits")
		}
		one := AppendArray(nil, len(cmd.Args)+cmd.More) // joined, then kept whole
		for {
			if len(cmd.Args) == 0 || len(cmd.Args) > lim.PieceArgs {
				return out, errors.New("a piece out of its limits")
			}
			size := 0
			for _, a := range cmd.Args {
				if len(a) > lim.MaxBulk {
					return out, errors.New("an argument out of its limits")
				}
				one = AppendBulk(one, a)
				size += len(a)
			}
			if cmd.More > 0 && size > lim.PieceBytes+lim.MaxBulk {
				return out, errors.New("a piece out of its limits")
			}
			if cmd.More == 0 {
				out = append(out, one...)
				break
			}
			if cmd, err = rd.Rest(); err != nil {
				return out, err
			}
		}
	}
}
