package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/rmbd/rmbd/wire"
)

// source returns the i'th attacker address of a block: 127.block.x.y,
// all local on loopback, so that limits per source address do not hide
// what a node's overall bounds do.
func source(block, i int) net.IP {
	return net.IPv4(127, byte(block), byte(1+i/250), byte(1+i%250))
}

// tally counts what attackers did.
type tally struct {
	dials, dialFails, closedByNode atomic.Int64
	sent                           atomic.Int64 // datagrams
}

// promise opens count connections from the block, each sending a header
// that promises a frame of MaxFrameBody bytes and then body bytes of it,
// and holds them until ctx ends.
func promise(ctx context.Context, addr string, block, count, body int) *tally {
	head := []byte{byte(wire.TypeAddBatch), 0, 0, 0, 0}
	binary.BigEndian.PutUint32(head[1:], wire.MaxFrameBody)
	return promiseBytes(ctx, addr, block, count, head, body)
}

// respBulk is the longest argument the RESP listener takes by default.
const respBulk = 512 << 10

// promiseRESP is promise over the RESP listener at addr: a command whose
// one argument is promised to be respBulk bytes long, body bytes of it
// sent.
func promiseRESP(ctx context.Context, addr string, block, count, body int) *tally {
	return promiseBytes(ctx, addr, block, count, []byte(fmt.Sprintf("*2\r\n$4\r\nECHO\r\n$%d\r\n", respBulk)), body)
}

// promiseBytes opens count connections from the block, each sending head
// and then body bytes, and holds them until ctx ends.
func promiseBytes(ctx context.Context, addr string, block, count int, head []byte, body int) *tally {
	t := &tally{}
	for i := range count {
		go func() {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: source(block, i)}, Timeout: 5 * time.Second}
			t.dials.Add(1)
			c, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				t.dialFails.Add(1)
				return
			}
			defer c.Close()
			dl, _ := ctx.Deadline()
			c.SetDeadline(dl)
			if _, err := c.Write(head); err != nil {
				t.closedByNode.Add(1)
				return
			}
			chunk := make([]byte, 64<<10)
			for left := body; left > 0; left -= len(chunk) {
				if _, err := c.Write(chunk[:min(len(chunk), left)]); err != nil {
					t.closedByNode.Add(1)
					return
				}
			}
			if _, err := c.Read(make([]byte, 1)); err != nil && ctx.Err() == nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				t.closedByNode.Add(1) // the node hung up before the attacker did
			}
		}()
	}
	return t
}

// hold opens count idle connections from the block, one after another,
// and keeps those the node lets it keep until ctx ends.
func hold(ctx context.Context, addr string, block, count int) *tally {
	t := &tally{}
	for i := range count {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: source(block, i)}, Timeout: 5 * time.Second}
		t.dials.Add(1)
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			t.dialFails.Add(1)
			continue
		}
		go func() {
			stop := context.AfterFunc(ctx, func() { c.Close() })
			defer stop()
			defer c.Close()
			if _, err := c.Read(make([]byte, 1)); err != nil && ctx.Err() == nil {
				t.closedByNode.Add(1) // to let a newer connection in
			}
		}()
	}
	return t
}

// flood sends frame as fast as it can from senders sockets of the block
// until ctx ends, reading nothing back.
func flood(ctx context.Context, addr string, block, senders int, frame []byte) *tally {
	t := &tally{}
	for i := range senders {
		go func() {
			c, err := net.DialUDP("udp", &net.UDPAddr{IP: source(block, i)}, mustUDP(addr))
			if err != nil {
				return
			}
			defer c.Close()
			for n := 0; ctx.Err() == nil; n++ {
				if _, err := c.Write(frame); err == nil {
					t.sent.Add(1)
				}
			}
		}()
	}
	return t
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
