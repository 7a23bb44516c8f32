package forward

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/rmbd/rmbd/wire"
)

// FuzzReplies feeds arbitrary bytes to a forward as the member's stream:
// the member reads the request, sends the bytes and hangs up. Do must
// return — an answer that decodes and carries the caller's id, or an
// error — without panicking or waiting for its timeout. The first
// forward on a connection is sent with request id 1, which the seeds
// answer.
func FuzzReplies(f *testing.F) {
	keys := []string{"a", "b", "c"}
	req := hasBatch(f, 0xabcdef, keys...)
	res, _ := wire.AppendResult(nil, wire.TypeHasResult, 1, 3, []byte{5})
	errFrame, _ := wire.AppendError(nil, wire.ErrorFrame{ReqID: 1, Code: wire.CodeNotHere, Msg: []byte("not here")})
	named, _ := wire.AppendNamed(nil, "users", res)
	other, _ := wire.AppendResult(nil, wire.TypeHasResult, 2, 3, []byte{5})
	f.Add(res)
	f.Add(errFrame)
	f.Add(named)
	f.Add(append(other, res...))
	f.Add(res[:len(res)-1])
	f.Add(toySeal(nil, res, netip.AddrPort{}))
	f.Add([]byte{byte(wire.TypeHasResult), 0, 0, 0, 2, 0, 0})
	f.Add([]byte{0xff, 0, 1, 2, 3})

	addr := netip.MustParseAddrPort("192.0.2.1:7000")
	f.Fuzz(func(t *testing.T, stream []byte) {
		var wg sync.WaitGroup
		dial := func(context.Context, netip.AddrPort) (net.Conn, error) {
			client, server := net.Pipe()
			wg.Go(func() {
				defer server.Close()
				if _, err := wire.NewFrameReader(server, 0).Next(); err != nil {
					return
				}
				server.Write(stream)
			})
			return client, nil
		}
		fw := New(Config{Dial: dial, Timeout: 10 * time.Second})
		start := time.Now()
		out, err := fw.Do(context.Background(), addr, "users", req, nil)
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("Do took %v", took)
		}
		if err == nil {
			if id, ok := answerID(out, len(keys)); !ok || id != 0xabcdef {
				t.Fatalf("answer %x does not answer the request with the caller's id", out)
			}
		}
		fw.Close()
		wg.Wait()
	})
}

// answerID reads the request id of an answer to a has batch of n keys,
// after decoding it whole: an error frame, or a has result of n keys.
func answerID(b []byte, n int) (uint32, bool) {
	if len(b) == 0 {
		return 0, false
	}
	switch wire.Type(b[0]) {
	case wire.TypeError:
		e, err := wire.DecodeError(b)
		return e.ReqID, err == nil
	case wire.TypeHasResult:
		r, err := wire.DecodeResult(b)
		return r.ReqID, err == nil && r.Count == n
	}
	return 0, false
}
