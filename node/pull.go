package node

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/wire"
)

// pull asks the node at addr, over TCP, for the rows in runs and merges
// what it sends. It returns the rows received and the rows that changed.
// This is both anti-entropy's repair and the bulk transfer that fills a
// new node: frames of up to a megabyte, merged as they arrive.
func (n *Node) pull(ctx context.Context, addr netip.AddrPort, runs []filter.Run) (rows, changed int, err error) {
	conn, err := n.tr.Dial(ctx, addr)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()

	fp := n.f.Fingerprint()
	var req []byte
	pulls := 0
	for len(runs) > 0 {
		k := min(len(runs), wire.MaxPullRuns)
		if req, err = wire.AppendPull(req, fp, runs[:k]); err != nil {
			return 0, 0, err
		}
		runs = runs[k:]
		pulls++
	}
	go conn.Write(req) // small; the reply may be large, so read at once
	fr := wire.NewFrameReader(conn, 1<<20)
	for pulls > 0 {
		frame, err := fr.Next()
		if err != nil {
			return rows, changed, err
		}
		switch wire.Type(frame[0]) {
		case wire.TypeRowSync:
			s, err := wire.DecodeRowSync(frame)
			if err != nil {
				return rows, changed, err
			}
			_, ch, err := gossip.MergeRowSync(n.f, s, nil)
			if err != nil {
				return rows, changed, err
			}
			rows += s.Runs.Rows()
			changed += ch
		case wire.TypePullDone:
			pulls--
		case wire.TypeError:
			e, _ := wire.DecodeError(frame)
			return rows, changed, fmt.Errorf("pull refused: %s", e.Msg)
		default:
			return rows, changed, fmt.Errorf("pull: unexpected %v frame", wire.Type(frame[0]))
		}
	}
	return rows, changed, nil
}

// servePull answers a pull frame on a TCP connection: row syncs of every
// set row asked for, then pull done. Frames go straight to w.
func (n *Node) servePull(frame []byte, w io.Writer) error {
	p, err := wire.DecodePull(frame)
	if err != nil {
		n.c.drop(BadFrames)
		return nil
	}
	sent, err := gossip.ServePull(n.f, p, wire.MaxFrame, func(f []byte) error {
		_, err := w.Write(f)
		return err
	})
	if err != nil {
		var out []byte
		code := wire.CodeRowRange
		if p.FP != n.f.Fingerprint() {
			code = wire.CodeFingerprint
			n.c.drop(FingerprintMismatch)
		}
		out, _ = wire.AppendError(out, wire.ErrorFrame{Code: code, Msg: []byte(err.Error())})
		_, werr := w.Write(out)
		return werr
	}
	n.c.inc(PullsServed)
	done, _ := wire.AppendPullDone(nil, wire.PullDone{Rows: uint32(sent)})
	_, err = w.Write(done)
	return err
}
