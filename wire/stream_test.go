package wire

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/rmbd/rmbd/internal/bufpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stream is every documented frame but the has reply (which has no type
// byte), one after another, plus one frame larger than any buffer.
func stream(t testing.TB) (all []byte, frames [][]byte) {
	for _, ex := range examples() {
		if ex.name == "classic-has-reply" {
			continue
		}
		frames = append(frames, ex.frame)
	}
	big := make([]byte, 100_000)
	big[0] = 0x01
	// Two frames larger than any buffer, the second smaller: it must not
	// be read into the first's memory past its end.
	for _, rows := range []int{1000, 600} {
		row := bytes.Repeat(big[:64], rows)
		f, err := AppendRowSync(nil, exampleFP, 1, 2, []RowRun{{First: 0, Rows: row}})
		require.NoError(t, err)
		frames = append(frames, f)
		frames = append(frames, must(AppendRowAck(nil, RowAck{Stamp: 1, Seq: 2, Rows: 3})))
	}
	for _, f := range frames {
		all = append(all, f...)
	}
	return all, frames
}

// readAll reads frames until an error and returns copies of them.
func readAll(fr *FrameReader) ([][]byte, error) {
	var out [][]byte
	for {
		f, err := fr.Next()
		if err != nil {
			return out, err
		}
		out = append(out, bytes.Clone(f))
	}
}

func TestFrameReaderWhateverTheChunks(t *testing.T) {
	all, want := stream(t)
	for name, wrap := range map[string]func(io.Reader) io.Reader{
		"whole":    func(r io.Reader) io.Reader { return r },
		"one byte": iotest.OneByteReader,
		"half":     iotest.HalfReader,
		"data+err": iotest.DataErrReader,
	} {
		t.Run(name, func(t *testing.T) {
			fr := NewFrameReader(wrap(bytes.NewReader(all)), 4096)
			got, err := readAll(fr)
			assert.ErrorIs(t, err, io.EOF)
			require.Equal(t, len(want), len(got))
			for i := range want {
				assert.Equal(t, want[i], got[i], "frame %d", i)
			}
		})
	}
}

func TestFrameReaderErrors(t *testing.T) {
	has := must(AppendClassicHas(nil, []byte("k")))
	batch := must(AppendBatch(nil, TypeHasBatch, 1, 0, [][]byte{[]byte("k")}))
	for _, c := range []struct {
		name string
		in   []byte
		want error
	}{
		{"torn classic frame", has[:100], io.ErrUnexpectedEOF},
		{"torn header", batch[:3], io.ErrUnexpectedEOF},
		{"torn body", batch[:len(batch)-1], io.ErrUnexpectedEOF},
		{"unknown type", []byte{0xee, 1, 2}, ErrType},
		{"length over the limit", []byte{0x11, 0xff, 0xff, 0xff, 0xff}, ErrTooLarge},
	} {
		t.Run(c.name, func(t *testing.T) {
			fr := NewFrameReader(bytes.NewReader(append(bytes.Clone(has), c.in...)), 0)
			f, err := fr.Next()
			require.NoError(t, err)
			assert.Equal(t, has, f)
			_, err = fr.Next()
			assert.ErrorIs(t, err, c.want)
		})
	}
}

// A header that promises a megabyte costs what arrives, not what it
// promises.
func TestFrameReaderGrowsWithWhatArrives(t *testing.T) {
	head := []byte{byte(TypeRowSync), 0, 0x10, 0, 0} // 1 MiB body
	fr := NewFrameReader(io.MultiReader(bytes.NewReader(head), bytes.NewReader(make([]byte, 1000))), 4096)
	_, err := fr.Next()
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	assert.LessOrEqual(t, cap(fr.big), 8192, "buffer grew past the bytes received")
}

func TestFrameReaderFixedAndBuffered(t *testing.T) {
	reply := must(AppendClassicHasReply(nil, []byte("k"), true))
	ack := AppendClassicAck(nil)
	fr := NewFrameReader(bytes.NewReader(append(bytes.Clone(reply), ack...)), 0)
	got, err := fr.Fixed(ClassicHasReplySize)
	require.NoError(t, err)
	assert.Equal(t, reply, got)
	assert.Equal(t, 1, fr.Buffered(), "the ack is read, not yet returned")
	got, err = fr.Next()
	require.NoError(t, err)
	assert.Equal(t, ack, got)
	assert.Equal(t, 0, fr.Buffered())
	_, err = fr.Fixed(1)
	assert.ErrorIs(t, err, io.EOF)
	_, err = fr.Fixed(0)
	assert.ErrorIs(t, err, ErrTooLarge)
}

// splitReader returns a's bytes, then b's, never both in one read: the
// stream arrives in two pieces split at a chosen byte.
type splitReader struct{ a, b []byte }

func (s *splitReader) Read(p []byte) (int, error) {
	src := &s.a
	if len(s.a) == 0 {
		src = &s.b
	}
	if len(*src) == 0 {
		return 0, io.EOF
	}
	n := copy(p, *src)
	*src = (*src)[n:]
	return n, nil
}

// FuzzFrameReader splits a stream at every byte: whatever the split, the
// frames read and the error that ends them are the same as from the
// stream in one piece.
func FuzzFrameReader(f *testing.F) {
	all, _ := stream(f)
	f.Add(all[:4000])
	seed(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		want, wantErr := readAll(NewFrameReader(bytes.NewReader(b), 1024))
		borrowing := NewFrameReader(iotest.HalfReader(bytes.NewReader(b)), 512)
		mem := bufpool.New(1<<22, 1<<20)
		borrowing.Borrow(mem, 4096)
		got, err := readAll(borrowing)
		borrowing.Close()
		if len(got) != len(want) || !errors.Is(err, unwrapSentinel(wantErr)) || mem.Stats().Lent != 0 {
			t.Fatalf("borrowing: %d frames, %v, %d bytes lent; plain: %d frames, %v", len(got), err, mem.Stats().Lent, len(want), wantErr)
		}
		for i := range len(b) + 1 {
			got, err := readAll(NewFrameReader(&splitReader{b[:i], b[i:]}, 1024))
			if len(got) != len(want) || !errors.Is(err, unwrapSentinel(wantErr)) {
				t.Fatalf("split at %d: %d frames, %v; whole: %d frames, %v", i, len(got), err, len(want), wantErr)
			}
			for j := range want {
				if !bytes.Equal(got[j], want[j]) {
					t.Fatalf("split at %d: frame %d differs", i, j)
				}
			}
		}
	})
}

// unwrapSentinel returns the sentinel inside a *FrameError, or err.
func unwrapSentinel(err error) error {
	var fe *FrameError
	if errors.As(err, &fe) {
		return fe.Err
	}
	return err
}

// Detached frames stay as they were while later frames are read, whether
// they were large (handed over) or small (copied), and memory given back
// with Reuse is read into again.
func TestFrameReaderDetach(t *testing.T) {
	all, want := stream(t)
	all = append(all, all...)
	want = append(want, want...)
	fr := NewFrameReader(bytes.NewReader(all), 4096)
	var kept [][]byte
	var spare []byte
	for range want {
		if spare != nil {
			fr.Reuse(spare)
			spare = nil
		}
		f, err := fr.Next()
		require.NoError(t, err)
		k, handed := fr.Detach(f)
		assert.Equal(t, len(k) > 4096, handed)
		if handed {
			assert.Same(t, &f[0], &k[0], "a large frame is handed over, not copied")
			if len(kept) > 0 && len(kept[len(kept)-1]) > 4096 {
				spare = kept[len(kept)-1] // done with: the next large frame lands there
				kept = kept[:len(kept)-1]
			}
		}
		kept = append(kept, k)
	}
	_, err := fr.Next()
	assert.ErrorIs(t, err, io.EOF)
	j := 0
	for i := range want {
		if j < len(kept) && bytes.Equal(want[i], kept[j]) {
			j++
		}
	}
	assert.Equal(t, len(kept), j, "every frame kept is intact")
}

// With borrowed memory: a large frame's memory goes back once it is
// served; a frame the budget cannot hold fails with ErrNoMemory, having
// borrowed no more than the bytes that arrived; a busy peer gets a larger
// buffer, given back by Release; OnWait fires once per frame that must
// be waited for.
func TestFrameReaderBorrows(t *testing.T) {
	all, want := stream(t)
	mem := bufpool.New(1<<20, 1<<20)
	waits := 0
	fr := NewFrameReader(iotest.HalfReader(bytes.NewReader(all)), 4096)
	fr.Borrow(mem, 64<<10)
	fr.OnWait(func() { waits++ })
	got, err := readAll(fr)
	assert.ErrorIs(t, err, io.EOF)
	assert.Equal(t, want, got)
	assert.Positive(t, waits)
	assert.LessOrEqual(t, waits, len(want))
	fr.Release()
	assert.Zero(t, mem.Stats().Lent, "everything given back")
	assert.Positive(t, mem.Stats().Peak)

	// A header promising 1 MiB, then 100 KB, then the end: the budget
	// (64 KiB) refuses before the promise is believed.
	big := append([]byte{byte(TypeRowSync), 0, 0x10, 0, 0}, make([]byte, 100_000)...)
	small := bufpool.New(64<<10, 0)
	fr = NewFrameReader(bytes.NewReader(big), 4096)
	fr.Borrow(small, 64<<10)
	_, err = fr.Next()
	assert.ErrorIs(t, err, ErrNoMemory)
	assert.LessOrEqual(t, small.Stats().Peak, int64(64<<10))
	fr.Close()
	assert.Zero(t, small.Stats().Lent)

	// A fast peer: the first read fills the small buffer, so the next
	// reads go to a borrowed one; Release gives it back once drained.
	var many []byte
	for range 200 {
		many = append(many, must(AppendRowAck(nil, RowAck{Stamp: 1, Seq: 2, Rows: 3}))...)
	}
	fr = NewFrameReader(bytes.NewReader(many), 512)
	fr.Borrow(mem, 64<<10)
	for range 100 {
		_, err := fr.Next()
		require.NoError(t, err)
	}
	assert.Equal(t, int64(64<<10), mem.Stats().Lent, "busy: a larger buffer")
	fr.Release()
	assert.Equal(t, int64(64<<10), mem.Stats().Lent, "bytes still buffered: kept")
	for range 100 {
		_, err := fr.Next()
		require.NoError(t, err)
	}
	fr.Release()
	assert.Zero(t, mem.Stats().Lent, "drained: given back")
}

func TestFrames(t *testing.T) {
	all, frames := stream(t)
	require.Equal(t, frames, collect(Frames(all)), "every frame, whole, in order")
	assert.Len(t, collect(Frames(all[:len(all)-1])), len(frames)-1, "stops before a frame cut short")
	assert.Empty(t, collect(Frames(append([]byte{0xff}, all...))), "a byte that begins no frame: nothing")
	for f := range Frames(all) {
		_ = append(f, 0xff) // capacity ends with the frame: the next is left alone
		break
	}
	require.Equal(t, frames, collect(Frames(all)))
}

func collect(seq func(func([]byte) bool)) (out [][]byte) {
	for f := range seq {
		out = append(out, f)
	}
	return out
}
