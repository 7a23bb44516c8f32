package respserver

import (
	"time"

	"github.com/rmbd/rmbd/access"
	"github.com/rmbd/rmbd/internal/conns"
)

// refuseProtected answers a connection from beyond loopback to a node in
// protected mode as Redis does: a DENIED error saying how to configure
// the node, then the connection closes.
func (s *Server) refuseProtected(cn *conns.Conn) {
	s.c.inc(cProtected)
	cn.C.SetWriteDeadline(time.Now().Add(s.cfg.FrameTimeout))
	cn.C.Write([]byte("-DENIED " + access.ProtectedMessage + "\r\n"))
	conns.LingerClose(cn.C)
}
