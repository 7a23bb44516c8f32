package resp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/rmbd/rmbd/internal/bufpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readAll reads every command of in, handed over by r (wrapping the
// stream), returning their arguments joined by spaces and the error that
// ended the stream.
func readAll(t testing.TB, r io.Reader, lim Limits, mem *bufpool.Pool) ([]string, error) {
	rd := NewReader(r, 16, lim)
	if mem != nil {
		rd.Borrow(mem, 4096)
	}
	defer rd.Close()
	var out []string
	for {
		cmd, err := rd.Next()
		if err != nil {
			return out, err
		}
		var parts []string
		for _, a := range cmd.Args {
			parts = append(parts, string(a))
		}
		out = append(out, strings.Join(parts, " "))
	}
}

func TestReaderCommands(t *testing.T) {
	lim := DefaultLimits()
	for _, tc := range []struct {
		name, in string
		want     []string
		err      string // "" for io.EOF
	}{
		{"one", "*2\r\n$4\r\nPING\r\n$2\r\nhi\r\n", []string{"PING hi"}, ""},
		{"pipelined", "*1\r\n$4\r\nPING\r\n*3\r\n$6\r\nBF.ADD\r\n$1\r\nf\r\n$0\r\n\r\n", []string{"PING", "BF.ADD f "}, ""},
		{"binary bulk", "*2\r\n$4\r\nECHO\r\n$4\r\na\r\nb\r\n", []string{"ECHO a\r\nb"}, ""},
		{"empty arrays skipped", "*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n", []string{"PING"}, ""},
		{"inline", "PING\r\nECHO  \"a b\\n\" 'c d'\nset x y\r\n", []string{"PING", "ECHO a b\n c d", "set x y"}, ""},
		{"inline empty lines", "\r\n\n  \r\nPING\n", []string{"PING"}, ""},
		{"unbalanced quotes", "ECHO \"a\n", nil, "Protocol error: unbalanced quotes in request"},
		{"closing quote then text", "ECHO \"a\"b\n", nil, "Protocol error: unbalanced quotes in request"},
		{"not a bulk", "*1\r\n:4\r\n", nil, "Protocol error: expected '$', got ':'"},
		{"bad count", "*x\r\n", nil, "Protocol error: invalid multibulk length"},
		{"count without CR", "*1\n$4\r\nPING\r\n", nil, "Protocol error: invalid multibulk length"},
		{"too many args", "*1048577\r\n", nil, "Protocol error: invalid multibulk length (1048577 arguments; at most 1048576)"},
		{"bulk too long", "*1\r\n$524289\r\n", nil, "Protocol error: invalid bulk length (524289 bytes; at most 524288)"},
		{"negative bulk", "*1\r\n$-1\r\n", nil, "Protocol error: invalid bulk length (-1 bytes; at most 524288)"},
		{"bulk not ended", "*1\r\n$2\r\nabc\r\n", nil, "Protocol error: invalid bulk length (the bulk does not end where it says)"},
		{"count string", "*" + strings.Repeat("1", 30), nil, "Protocol error: too big mbulk count string"},
		{"bulk count string", "*1\r\n$" + strings.Repeat("1", 30), nil, "Protocol error: too big bulk count string"},
		{"cut in a command", "*2\r\n$4\r\nPING\r\n$2\r\nh", nil, io.ErrUnexpectedEOF.Error()},
		{"cut in an inline command", "PING", nil, io.ErrUnexpectedEOF.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAll(t, strings.NewReader(tc.in), lim, nil)
			require.Equal(t, tc.want, got)
			if tc.err == "" {
				require.ErrorIs(t, err, io.EOF)
			} else {
				require.EqualError(t, err, tc.err)
			}
		})
	}
}

// TestReaderSplitAnywhere feeds a pipeline cut at every byte, and one
// byte at a time: the same commands come out.
func TestReaderSplitAnywhere(t *testing.T) {
	in := "*3\r\n$6\r\nBF.ADD\r\n$3\r\nfil\r\n$5\r\nk\r\ney\r\nPING x\r\n*1\r\n$4\r\nPING\r\n" +
		"*2\r\n$4\r\nECHO\r\n$300\r\n" + strings.Repeat("v", 300) + "\r\n"
	want, err := readAll(t, strings.NewReader(in), DefaultLimits(), nil)
	require.ErrorIs(t, err, io.EOF)
	require.Len(t, want, 4)
	for cut := range len(in) {
		r := io.MultiReader(strings.NewReader(in[:cut]), strings.NewReader(in[cut:]))
		got, err := readAll(t, r, DefaultLimits(), nil)
		require.ErrorIs(t, err, io.EOF)
		require.Equal(t, want, got, "cut at %d", cut)
	}
	got, err := readAll(t, iotest.OneByteReader(strings.NewReader(in)), DefaultLimits(), nil)
	require.ErrorIs(t, err, io.EOF)
	require.Equal(t, want, got)
}

// TestReaderBounds: a command past MaxCommand, or one the buffer budget
// cannot hold, fails; memory grows with the bytes that arrive and all of
// it goes back.
func TestReaderBounds(t *testing.T) {
	lim := Limits{MaxArgs: 100, MaxBulk: 1 << 20, MaxInline: 1 << 10, MaxCommand: 64 << 10}
	big := "*2\r\n$4\r\nECHO\r\n$70000\r\n" + strings.Repeat("x", 70000) + "\r\n"
	_, err := readAll(t, strings.NewReader(big), lim, nil)
	require.EqualError(t, err, "Protocol error: command too large (more than 65536 bytes)")

	many := "*3\r\n" + strings.Repeat("$30000\r\n"+strings.Repeat("y", 30000)+"\r\n", 3)
	_, err = readAll(t, strings.NewReader(many), lim, nil)
	require.EqualError(t, err, "Protocol error: command too large (more than 65536 bytes)")

	_, err = readAll(t, strings.NewReader(strings.Repeat("a", 2000)), lim, nil)
	require.EqualError(t, err, "Protocol error: too big inline request")

	// A promise costs nothing: a header for a 1 MiB bulk with 10 bytes
	// behind it borrows no more than its own buffer.
	pool := bufpool.New(1<<20, 0)
	promise := "*2\r\n$4\r\nECHO\r\n$1000000\r\n0123456789"
	_, err = readAll(t, strings.NewReader(promise), Limits{MaxArgs: 10, MaxBulk: 1 << 20, MaxInline: 1024, MaxCommand: 2 << 20}, pool)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.Zero(t, pool.Stats().Lent)
	require.LessOrEqual(t, pool.Stats().Peak, int64(4096))

	// Past the budget: ErrNoMemory, and nothing stays lent.
	small := bufpool.New(8<<10, 0)
	_, err = readAll(t, strings.NewReader(big), Limits{MaxArgs: 10, MaxBulk: 1 << 20, MaxInline: 1024, MaxCommand: 1 << 20}, small)
	require.ErrorIs(t, err, ErrNoMemory)
	require.Zero(t, small.Stats().Lent)

	// Within it: the command, and everything given back.
	roomy := bufpool.New(1<<20, 0)
	got, err := readAll(t, strings.NewReader(big), Limits{MaxArgs: 10, MaxBulk: 1 << 20, MaxInline: 1024, MaxCommand: 1 << 20}, roomy)
	require.ErrorIs(t, err, io.EOF)
	require.Len(t, got, 1)
	require.Zero(t, roomy.Stats().Lent)
}

// TestReaderBeforeRead: the hook runs before each read, saying whether a
// command has begun, and its error ends Next.
func TestReaderBeforeRead(t *testing.T) {
	r := io.MultiReader(strings.NewReader("*1\r\n$4\r\nPING\r\n*1\r\n"), strings.NewReader("$4\r\nPI"))
	rd := NewReader(r, 512, DefaultLimits())
	var begun []bool
	stop := errors.New("stop")
	rd.BeforeRead(func(b bool) error {
		begun = append(begun, b)
		if len(begun) == 3 {
			return stop
		}
		return nil
	})
	cmd, err := rd.Next()
	require.NoError(t, err)
	require.Equal(t, [][]byte{[]byte("PING")}, cmd.Args)
	_, err = rd.Next()
	require.ErrorIs(t, err, stop)
	require.Equal(t, []bool{false, true, true}, begun)
}

func TestReaderArgsAreSlices(t *testing.T) {
	in := bytes.Repeat([]byte("*2\r\n$4\r\nECHO\r\n$3\r\nabc\r\n"), 100)
	rd := NewReader(bytes.NewReader(in), 4096, DefaultLimits())
	for range 100 {
		cmd, err := rd.Next()
		require.NoError(t, err)
		require.Equal(t, "abc", string(cmd.Args[1]))
		require.Equal(t, 3, cap(cmd.Args[1]), "an argument must not reach into the next")
	}
	allocs := testing.AllocsPerRun(100, func() {
		rd := NewReader(bytes.NewReader(in), 4096, DefaultLimits())
		for range 100 {
			rd.Next()
		}
	})
	require.Less(t, allocs, 10.0, "allocations for 100 commands")
}

// TestReaderPieces: a command of 300,000 arguments, about 4 MB, is read
// through a budget of 1 MiB: in pieces of at most PieceArgs arguments,
// every argument as sent, the budget never passed, and every byte given
// back. Pieces not taken are skipped.
func TestReaderPieces(t *testing.T) {
	const n = 300_000
	in := AppendArray(nil, n+1)
	in = AppendBulkString(in, "BF.MADD")
	for i := range n {
		in = AppendBulkString(in, fmt.Sprint("item-", i))
	}
	in = append(in, "*1\r\n$4\r\nPING\r\n"...)
	require.Greater(t, len(in), 4<<20)
	pool := bufpool.New(1<<20, 0)
	rd := NewReader(iotest.HalfReader(bytes.NewReader(append(bytes.Clone(in), in...))), 2048, DefaultLimits())
	rd.Borrow(pool, 64<<10)
	cmd, err := rd.Next()
	require.NoError(t, err)
	require.Equal(t, "BF.MADD", string(cmd.Args[0]))
	got, pieces := len(cmd.Args)-1, 1
	for cmd.More > 0 {
		require.Equal(t, n+1-got-1, cmd.More)
		cmd, err = rd.Rest()
		require.NoError(t, err)
		require.LessOrEqual(t, len(cmd.Args), DefaultPieceArgs)
		for _, a := range cmd.Args {
			require.Equal(t, fmt.Sprint("item-", got), string(a))
			got++
		}
		pieces++
	}
	require.Equal(t, n, got)
	require.GreaterOrEqual(t, pieces, n/DefaultPieceArgs)
	cmd, err = rd.Next()
	require.NoError(t, err)
	require.Equal(t, "PING", string(cmd.Args[0]))

	cmd, err = rd.Next() // the command again, its pieces skipped
	require.NoError(t, err)
	require.Positive(t, cmd.More)
	cmd, err = rd.Next()
	require.NoError(t, err)
	require.Equal(t, []byte("PING"), cmd.Args[0])
	require.Zero(t, cmd.More)
	_, err = rd.Next()
	require.ErrorIs(t, err, io.EOF)
	rd.Close()
	require.LessOrEqual(t, pool.Stats().Peak, int64(1<<20))
	require.Zero(t, pool.Stats().Refused)
	require.Zero(t, pool.Stats().Lent)
}

// OrDefaults fills what is not set and keeps what is.
func TestLimitsOrDefaults(t *testing.T) {
	d := DefaultLimits()
	assert.Equal(t, d, Limits{}.OrDefaults())
	l := Limits{MaxArgs: 10, MaxCommand: -1, PieceBytes: 4096}.OrDefaults()
	assert.Equal(t, 10, l.MaxArgs)
	assert.Equal(t, d.MaxCommand, l.MaxCommand)
	assert.Equal(t, 4096, l.PieceBytes)
	assert.Equal(t, d.PieceArgs, l.PieceArgs)
}

// An inline command longer than a piece is handed over in pieces, as an
// array is: no piece holds more than PieceArgs arguments. (Found by the
// fuzzer: it came whole, past the bound.)
func TestInlineInPieces(t *testing.T) {
	lim := DefaultLimits()
	lim.PieceArgs = 2
	rd := NewReader(strings.NewReader("a b c d e\nPING\n"), 64, lim)
	cmd, err := rd.Next()
	require.NoError(t, err)
	var got [][]string
	for {
		var piece []string
		for _, a := range cmd.Args {
			piece = append(piece, string(a))
		}
		got = append(got, piece)
		if cmd.More == 0 {
			break
		}
		cmd, err = rd.Rest()
		require.NoError(t, err)
	}
	assert.Equal(t, [][]string{{"a", "b"}, {"c", "d"}, {"e"}}, got)
	cmd, err = rd.Next()
	require.NoError(t, err)
	assert.Equal(t, "PING", string(cmd.Args[0]))
}
