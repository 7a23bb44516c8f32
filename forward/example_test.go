package forward_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/rmbd/rmbd/forward"
	"github.com/rmbd/rmbd/wire"
)

// A member is asked whether it holds two keys of the filter "users"; it
// answers with its own request id, and the caller gets its own back.
func Example() {
	member := func(c net.Conn) { // answers one has batch: the first key is present
		defer c.Close()
		frame, _ := wire.NewFrameReader(c, 0).Next()
		named, _ := wire.DecodeNamed(frame)
		b, _ := wire.DecodeBatch(named.Inner)
		answer, _ := wire.AppendResult(nil, wire.TypeHasResult, b.ReqID, b.Keys.Len(), []byte{0b01})
		c.Write(answer)
	}
	f := forward.New(forward.Config{
		Dial: func(context.Context, netip.AddrPort) (net.Conn, error) {
			c, m := net.Pipe() // a real Forwarder dials TCP
			go member(m)
			return c, nil
		},
	})
	defer f.Close()

	req, _ := wire.AppendBatch(nil, wire.TypeHasBatch, 42, 0, [][]byte{[]byte("alice"), []byte("bob")})
	answer, err := f.Do(context.Background(), netip.MustParseAddrPort("10.0.0.2:7000"), "users", req, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	res, _ := wire.DecodeResult(answer)
	fmt.Println(res.ReqID, res.Get(0), res.Get(1))
	// Output: 42 true false
}
