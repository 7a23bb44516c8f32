package node

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/netip"
	"testing"

	"github.com/rmbd/rmbd/internal/memnet"
	"github.com/rmbd/rmbd/resp"
)

// FuzzRESPCommands: whatever bytes a client sends, cut wherever, every
// command it makes is answered with one well-formed reply, and nothing
// panics. The node runs on an in-memory network, small limits bounding
// what a created filter may take.
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
	} {
		f.Add([]byte(s), uint16(7))
	}
	ep, err := memnet.New(1).Endpoint(netip.MustParseAddrPort("127.0.0.1:9"))
	if err != nil {
		f.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Transport, cfg.Resolver = ep, resolver{}
	cfg.MaxMemory, cfg.MaxFilters, cfg.MaxFilterBytes = 32<<20, 32, 4<<20
	n, err := New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	n.manualTicks = true
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	<-n.Ready()
	f.Cleanup(func() { cancel(); <-done })

	lim := resp.Limits{MaxArgs: 64, MaxBulk: 512, MaxInline: 1024, MaxCommand: 8192}
	from := netip.MustParseAddrPort("127.0.0.1:5000")
	f.Fuzz(func(t *testing.T, in []byte, cut uint16) {
		at := int(cut) % (len(in) + 1)
		rd := resp.NewReader(io.MultiReader(bytes.NewReader(in[:at]), bytes.NewReader(in[at:])), 64, lim)
		rc := &respConn{cn: &conn{from: from}, id: 1, proto: 2, authed: true, w: &worker{c: n.c, tcp: true}}
		for !rc.quit {
			cmd, err := rd.Next()
			if err != nil {
				var pe *resp.ProtocolError
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.As(err, &pe) {
					t.Fatalf("reader: %v", err)
				}
				return
			}
			before := len(rc.out)
			n.respCommand(rc, cmd.Args)
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
