package respserver

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"io"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/rmbd/rmbd/access"
	"github.com/rmbd/rmbd/dump"
	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/internal/bufpool"
	"github.com/rmbd/rmbd/internal/conns"
	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/resp"
	"github.com/rmbd/rmbd/wire"
)

// testBackend is a node as the server sees it, over an in-memory
// registry: what the server's own tests need, without a node.
type testBackend struct {
	reg *registry.Registry
	// The keys of the filters placed on other members, by filter, as
	// their owners hold them (Batch); refuse, if set, is their answer.
	mu      sync.Mutex
	remote  map[string]map[string]bool
	refuse  *wire.ErrorFrame
	batches int
}

func newTestBackend(tb testing.TB, maxMemory int64) *testBackend {
	reg, err := registry.Open(registry.Config{Node: "test", Default: registry.Sizing{Layout: filter.Blocked, Capacity: 1000, FPRate: 0.01},
		MaxFilters: 32, MaxMemory: maxMemory, MaxFilterBytes: 4 << 20, TombstoneTTL: time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { reg.Close() })
	return &testBackend{reg: reg}
}

func (b *testBackend) Registry() *registry.Registry { return b.reg }

func (b *testBackend) FilterFor(name []byte, from netip.Addr) (*registry.Filter, error) {
	if f := b.reg.Lookup(name).Winner(); f != nil {
		return f, nil
	}
	return b.Create(string(name), registry.Sizing{Layout: filter.Blocked, Capacity: 1000, FPRate: 0.01}, from)
}

func (b *testBackend) Create(name string, s registry.Sizing, _ netip.Addr) (*registry.Filter, error) {
	p, err := b.reg.Create(name, s)
	if err != nil {
		return nil, err
	}
	res := b.reg.Apply(p)
	if res.Filter == nil {
		return nil, res.Err
	}
	return res.Filter, nil
}

func (b *testBackend) Drop(name string) error {
	p, err := b.reg.Drop(name)
	if err != nil {
		return err
	}
	return b.reg.Apply(p).Err
}

func (b *testBackend) SetDeadline(name string, deadline time.Time, cond func(time.Time) bool) error {
	p, err := b.reg.SetDeadline(name, deadline, cond)
	if p != nil {
		err = cmp.Or(err, b.reg.Apply(p).Err)
	}
	return err
}

func (b *testBackend) LoadChunk(name string, chunk []byte, from netip.Addr) (dump.Loaded, error) {
	return dump.Load(b.reg, func(name string, s registry.Sizing) (*registry.Filter, error) { return b.Create(name, s, from) }, name, chunk)
}

func (b *testBackend) Info() Info { return Info{Name: "test", Profile: "default"} }

// Batch serves a batch as the owners of a filter on other members would.
func (b *testBackend) Batch(name, batch []byte, _ netip.Addr, dst []byte) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batches++
	q, err := wire.DecodeBatch(batch)
	if err != nil {
		return dst, err
	}
	if b.refuse != nil {
		e := *b.refuse
		e.ReqID = q.ReqID
		return wire.AppendError(dst[:0], e)
	}
	if b.remote == nil {
		b.remote = map[string]map[string]bool{}
	}
	keys := b.remote[string(name)]
	if keys == nil {
		keys = map[string]bool{}
		b.remote[string(name)] = keys
	}
	bits := make([]byte, wire.BitmapLen(q.Keys.Len()))
	i := 0
	for k := range q.Keys.All() {
		if q.Type == wire.TypeAddBatch && !keys[string(k)] || q.Type == wire.TypeHasBatch && keys[string(k)] {
			bits[i/8] |= 1 << (i % 8)
		}
		if q.Type == wire.TypeAddBatch {
			keys[string(k)] = true
		}
		i++
	}
	t := wire.TypeHasResult
	if q.Type == wire.TypeAddBatch {
		t = wire.TypeAddResult
	}
	return wire.AppendResult(dst[:0], t, q.ReqID, i, bits)
}

// testServer is a server of b's filters that is never started: commands
// are run on it directly.
func testServer(b Backend) *Server {
	return New(Config{AutoCreate: true, Sizing: registry.Sizing{Layout: filter.Blocked, Capacity: 1000, FPRate: 0.01},
		Policy: &access.Policy{}, Context: context.Background(), Buffers: bufpool.New(64<<20, 0)}, b)
}

// FuzzRESPCommands: whatever bytes a client sends, cut wherever, every
// command it makes is answered with one well-formed reply, and nothing
// panics. Small limits bound what a created filter may take; small pieces
// make long commands of a few arguments.
func FuzzRESPCommands(f *testing.F) {
	for _, s := range []string{
		"*4\r\n$10\r\nBF.RESERVE\r\n$1\r\nf\r\n$4\r\n0.01\r\n$4\r\n1000\r\n",
		"BF.ADD f a\r\nBF.MADD f a b c\r\nBF.EXISTS f a\r\nBF.MEXISTS f a z\r\n",
		"BF.INSERT g CAPACITY 10 ERROR 0.1 NOCREATE ITEMS a b\r\nBF.INSERT g ITEMS x\r\n",
		"BF.INFO f\r\nBF.INFO f ITEMS\r\nBF.CARD f\r\nBF.INFO nope\r\n",
		"KEYS *\r\nSCAN 0 MATCH f* COUNT 1 TYPE MBbloom--\r\nDBSIZE\r\nTYPE f\r\nEXISTS f g\r\nDEL f g default\r\n",
		"HELLO 3 SETNAME x\r\nCLIENT SETINFO LIB-NAME y\r\nCLIENT ID\r\nCLIENT GETNAME\r\nINFO bloom\r\nCOMMAND DOCS BF.ADD\r\nCOMMAND INFO x\r\n",
		"PING\r\nECHO hi\r\nSELECT 0\r\nAUTH x\r\nQUIT\r\nNOPE a b\r\n",
		"KEYS [a-\\\r\nKEYS \"[^]*\"\r\nSCAN 18446744073709551615\r\n",
		"*8\r\n$7\r\nBF.MADD\r\n$1\r\nf\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n$1\r\ne\r\n$1\r\nf\r\n" +
			"*6\r\n$10\r\nBF.MEXISTS\r\n$1\r\nf\r\n$1\r\na\r\n$1\r\nz\r\n$1\r\nc\r\n$1\r\nf\r\n",
		"*8\r\n$9\r\nBF.INSERT\r\n$1\r\ng\r\n$8\r\nCAPACITY\r\n$2\r\n10\r\n$5\r\nITEMS\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n" +
			"*6\r\n$6\r\nEXISTS\r\n$1\r\nf\r\n$1\r\ng\r\n$1\r\nh\r\n$1\r\nf\r\n$1\r\nf\r\n*6\r\n$3\r\nDEL\r\n$1\r\nq\r\n$1\r\nr\r\n$1\r\ns\r\n$1\r\nt\r\n$1\r\nu\r\n",
	} {
		f.Add([]byte(s), uint16(7))
	}
	s := testServer(newTestBackend(f, 32<<20))
	lim := resp.Limits{MaxArgs: 64, MaxBulk: 512, MaxInline: 1024, MaxCommand: 8192, PieceArgs: 4, PieceBytes: 256}
	f.Fuzz(func(t *testing.T, in []byte, cut uint16) {
		at := int(cut) % (len(in) + 1)
		rd := resp.NewReader(io.MultiReader(bytes.NewReader(in[:at]), bytes.NewReader(in[at:])), 64, lim)
		rc := &respConn{cn: &conns.Conn{From: loopback}, id: 1, proto: 2, authed: true, rd: rd}
		for !rc.quit {
			cmd, err := rd.Next()
			before := len(rc.out)
			if err == nil {
				s.respCommand(rc, cmd)
				err = rc.err
			}
			if err != nil {
				var pe *resp.ProtocolError
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.As(err, &pe) {
					t.Fatalf("reader: %v", err)
				}
				if lent := s.cfg.Buffers.Stats().Lent; lent != 0 {
					t.Fatalf("%d bytes still lent", lent)
				}
				return
			}
			reply := rc.out[before:]
			if len(reply) < 3 || !bytes.HasSuffix(reply, []byte("\r\n")) || bytes.IndexByte([]byte("+-:$*%_#,=~"), reply[0]) < 0 {
				t.Fatalf("%q answered %q", cmd.Args, reply)
			}
			if len(rc.out) > 1<<20 {
				rc.out = rc.out[:0]
			}
		}
	})
}

// The server works on any Backend: a filter reserved, added to and
// asked, without a node.
func TestCommandsOnABackend(t *testing.T) {
	s := testServer(newTestBackend(t, 0))
	rc := &respConn{cn: &conns.Conn{From: loopback}, id: 1, proto: 3, authed: true}
	for _, cmd := range []string{"BF.RESERVE f 0.01 100", "BF.MADD f a b", "BF.MEXISTS f a z", "BF.CARD f", "DBSIZE"} {
		var args [][]byte
		for _, a := range bytes.Fields([]byte(cmd)) {
			args = append(args, a)
		}
		s.respCommand(rc, resp.Command{Args: args})
	}
	want := "+OK\r\n*2\r\n#t\r\n#t\r\n*2\r\n#t\r\n#f\r\n:2\r\n:2\r\n"
	if string(rc.out) != want {
		t.Fatalf("answered %q, want %q", rc.out, want)
	}
}

// loopback is where the tests' commands come from: an admin.
var loopback = netip.MustParseAddrPort("127.0.0.1:5000")
