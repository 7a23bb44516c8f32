package respserver

import (
	"strconv"

	"github.com/rmbd/rmbd/dump"
	"github.com/rmbd/rmbd/resp"
)

// BF.SCANDUMP and BF.LOADCHUNK: RedisBloom's iterator protocol over
// rmbd's own chunks (package dump, docs/FORMAT.md). A dump begins at
// iterator 0; each reply is the next iterator and a chunk, and [0, ""]
// ends it. BF.LOADCHUNK takes the chunks in the order they came; the
// chunk says where it goes, so its iterator is only checked to be one.

func (s *Server) bfScanDump(rc *respConn, args [][]byte) {
	it, err := strconv.ParseInt(string(args[2]), 10, 64)
	if err != nil || it < 0 {
		s.respErr(rc, "ERR Second argument must be numeric")
		return
	}
	f := s.reg.Lookup(args[1]).Winner()
	if f == nil {
		s.respErr(rc, errNotFound)
		return
	}
	next, chunk, err := dump.Scan(f, uint64(it), make([]byte, 0, dump.ChunkRowBytes+4096))
	if err != nil {
		s.respErr(rc, "ERR "+err.Error())
		return
	}
	rc.out = resp.AppendArray(rc.out, 2)
	rc.out = resp.AppendInt(rc.out, int64(next))
	rc.out = resp.AppendBulk(rc.out, chunk)
}

func (s *Server) bfLoadChunk(rc *respConn, args [][]byte) {
	if _, err := strconv.ParseInt(string(args[2]), 10, 64); err != nil {
		s.respErr(rc, "ERR Second argument must be numeric")
		return
	}
	var err error
	s.outside(rc, func() { _, err = s.b.LoadChunk(string(args[1]), args[3], rc.cn.From.Addr()) }) // it may create the filter
	if err != nil {
		s.respErr(rc, "ERR "+err.Error())
		return
	}
	respOK(rc)
}
