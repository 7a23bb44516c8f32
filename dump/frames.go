package dump

import (
	"errors"
	"fmt"

	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/wire"
)

// The binary protocol's dump and load requests (wire/dump.go), as a node
// answers them once it has let them in.

// Name is the filter a dump or load request names: the default for none.
func Name(b []byte) string {
	if len(b) == 0 {
		return registry.DefaultName
	}
	return string(b)
}

// ErrNoFilter refuses a dump of a filter the node does not hold.
var ErrNoFilter = errors.New("no filter")

// AnswerDump appends the dump chunk frame answering q: the chunk of the
// filter q names at q's iterator, and the iterator of the next.
func AnswerDump(dst []byte, reg *registry.Registry, q wire.DumpRequest) ([]byte, error) {
	f := reg.Lookup([]byte(Name(q.Name))).Winner()
	if f == nil {
		return dst, fmt.Errorf("%w %s", ErrNoFilter, Name(q.Name))
	}
	next, chunk, err := Scan(f, q.Iterator, nil)
	if err != nil {
		return dst, err
	}
	return wire.AppendDumpChunk(dst, wire.DumpChunk{ReqID: q.ReqID, Iterator: next, Chunk: chunk})
}

// AnswerLoad appends the loaded frame answering load request id with l.
func AnswerLoad(dst []byte, id uint32, l Loaded) []byte {
	a := wire.Loaded{ReqID: id, Rows: uint32(l.Rows), Changed: uint32(l.Changed)}
	if l.Created {
		a.Flags |= wire.LoadedCreated
	}
	out, _ := wire.AppendLoaded(dst, a)
	return out
}
