package main

import (
	"context"
	"encoding/binary"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/rmbd/rmbd/wire"
)

// The well-behaved clients: one has request every probeEvery, each
// waiting at most probeTimeout for its answer (no resend: a request
// unanswered by then is lost).
const (
	probeEvery   = 10 * time.Millisecond
	probeTimeout = 500 * time.Millisecond
)

// result is what a well-behaved client got over a phase.
type result struct {
	sent, lost int
	lat        []time.Duration
	dials      int // TCP: connections made
	dialFails  int // TCP: connections refused or timed out
	// lostAt is when each lost UDP request was sent, from the start.
	lostAt []time.Duration
}

func (r result) lossRate() float64 {
	if r.sent == 0 {
		return 0
	}
	return float64(r.lost) / float64(r.sent)
}

// quantile returns the q quantile of the answered requests' latency.
func (r result) quantile(q float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	s := slices.Clone(r.lat)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func hasFrame(id uint32) []byte {
	b, _ := wire.AppendBatch(nil, wire.TypeHasBatch, id, 0, [][]byte{[]byte("probe-key")})
	return b
}

// probeUDP asks addr from 127.0.0.2 until ctx ends.
func probeUDP(ctx context.Context, addr string) result {
	conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)}, mustUDP(addr))
	if err != nil {
		return result{sent: 1, lost: 1}
	}
	defer conn.Close()
	var mu sync.Mutex
	sentAt := map[uint32]time.Time{}
	var res result
	done := make(chan struct{})
	go func() { // answers
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			r, err := wire.DecodeResult(buf[:n])
			if err != nil {
				continue
			}
			mu.Lock()
			if at, ok := sentAt[r.ReqID]; ok {
				if d := time.Since(at); d <= probeTimeout {
					res.lat = append(res.lat, d)
				}
				delete(sentAt, r.ReqID)
			}
			mu.Unlock()
		}
	}()
	tick := time.NewTicker(probeEvery)
	defer tick.Stop()
	start := time.Now()
	for id := uint32(1); ctx.Err() == nil; id++ {
		mu.Lock()
		sentAt[id] = time.Now()
		res.sent++
		mu.Unlock()
		conn.Write(hasFrame(id))
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	time.Sleep(probeTimeout) // the last answers
	conn.Close()
	<-done
	mu.Lock()
	defer mu.Unlock()
	res.lost = res.sent - len(res.lat)
	for _, at := range sentAt {
		res.lostAt = append(res.lostAt, at.Sub(start))
	}
	slices.Sort(res.lostAt)
	return res
}

// probeTCP asks addr from 127.0.0.3, on a connection it makes anew every
// second (a client must still get in), until ctx ends.
func probeTCP(ctx context.Context, addr string) result {
	var res result
	var conn net.Conn
	var since time.Time
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3)}, Timeout: probeTimeout}
	tick := time.NewTicker(probeEvery)
	defer tick.Stop()
	buf := make([]byte, 64)
	for id := uint32(1); ctx.Err() == nil; id++ {
		res.sent++
		began := time.Now()
		if conn == nil || time.Since(since) > time.Second {
			if conn != nil {
				conn.Close()
			}
			var err error
			res.dials++
			if conn, err = d.Dial("tcp", addr); err != nil {
				res.dialFails++
				res.lost++
				conn = nil
				<-tick.C
				continue
			}
			since = time.Now()
		}
		conn.SetDeadline(time.Now().Add(probeTimeout))
		ok := false
		if _, err := conn.Write(hasFrame(id)); err == nil {
			if n, err := readFrame(conn, buf); err == nil {
				r, err := wire.DecodeResult(buf[:n])
				ok = err == nil && r.ReqID == id
			}
		}
		if ok {
			res.lat = append(res.lat, time.Since(began))
		} else {
			res.lost++
			conn.Close()
			conn = nil
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	if conn != nil {
		conn.Close()
	}
	return res
}

// readFrame reads one small extended frame into buf.
func readFrame(c net.Conn, buf []byte) (int, error) {
	if _, err := readFull(c, buf[:wire.HeaderSize]); err != nil {
		return 0, err
	}
	n := wire.HeaderSize + int(binary.BigEndian.Uint32(buf[1:]))
	if n > len(buf) {
		return 0, net.ErrClosed
	}
	_, err := readFull(c, buf[wire.HeaderSize:n])
	return n, err
}

func readFull(c net.Conn, b []byte) (int, error) {
	got := 0
	for got < len(b) {
		n, err := c.Read(b[got:])
		got += n
		if err != nil {
			return got, err
		}
	}
	return got, nil
}

func mustUDP(addr string) *net.UDPAddr {
	a, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		panic(err)
	}
	return a
}
