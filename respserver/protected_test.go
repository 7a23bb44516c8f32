package respserver

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rmbd/rmbd/access"
	"github.com/rmbd/rmbd/internal/conns"
	"github.com/rmbd/rmbd/resp"
)

// fromConn is a connection whose peer seems to be at addr.
type fromConn struct {
	net.Conn
	addr net.Addr
}

func (c fromConn) RemoteAddr() net.Addr { return c.addr }

// A node in protected mode answers a RESP client from beyond loopback as
// Redis does, DENIED and the reason, and closes; loopback is served.
func TestProtectedModeDenies(t *testing.T) {
	s := testServer(newTestBackend(t, 0))
	s.cfg.Policy = &access.Policy{Protected: true}
	s.cfg.Conns = conns.New(conns.Config{Max: 8, MaxPerSource: 8})
	s.cfg.FrameTimeout, s.cfg.IdleTimeout, s.cfg.Context = time.Second, time.Second, context.Background()
	s.cfg.Limits = resp.DefaultLimits()
	for _, c := range []struct {
		from string
		want string
	}{
		{"192.0.2.1", "-DENIED rmbd is in protected mode"},
		{"127.0.0.1", "+PONG"},
	} {
		client, server := net.Pipe()
		cn, ok := s.cfg.Conns.Admit(fromConn{server, &net.TCPAddr{IP: net.ParseIP(c.from), Port: 5000}})
		if !ok {
			t.Fatal("not admitted")
		}
		done := make(chan struct{})
		go func() { s.serve(cn); close(done) }()
		client.SetDeadline(time.Now().Add(10 * time.Second))
		go client.Write([]byte("PING\r\n"))
		line, err := bufio.NewReader(client).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, c.want) {
			t.Fatalf("from %s: %q, %v; want %q…", c.from, line, err, c.want)
		}
		client.Close()
		<-done
	}
	if got := s.Counts().Protected; got != 1 {
		t.Fatalf("protected count %d, want 1", got)
	}
}
