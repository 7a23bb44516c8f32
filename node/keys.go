package node

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/rmbd/rmbd/access"
	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/store"
	"github.com/rmbd/rmbd/wire"
)

// Adding and asking for keys: classic frames address the default filter;
// batches address it too, or, wrapped in a named frame, a filter by name.

func (n *Node) classicAdd(q *request) reply {
	key, err := wire.DecodeClassicKey(q.frame, wire.TypeAdd)
	if err != nil {
		return n.bad(q)
	}
	if !n.may(q, access.Add) {
		return n.refuseClassic(q, "add: this address may not add (--allow)")
	}
	var bit [1]byte
	q.w.keys = append(q.w.keys[:0], key)
	fresh, _ := n.reg.Default().AddUnacked(q.w.keys, bit[:], &q.w.sc) // classic adds are not acknowledged
	clear(q.w.keys)                                                   // a slice of a frame about to be reused
	q.w.c.Inc(counter.Adds)
	q.w.c.Add(counter.AddsNew, uint64(fresh))
	return reply{}
}

func (n *Node) classicHas(q *request) reply {
	key, err := wire.DecodeClassicKey(q.frame, wire.TypeHas)
	if err != nil {
		return n.bad(q)
	}
	if !n.may(q, access.Read) {
		return n.refuseClassic(q, "has: this address may not ask (--allow-read)")
	}
	present := n.reg.Default().Has(key)
	q.w.c.Inc(counter.HasQueries)
	if present {
		q.w.c.Inc(counter.HasHits)
	}
	b, _ := wire.AppendClassicHasReply(q.w.buf[:0], key, present)
	return reply{frame: b}
}

// batch serves an add or has batch: adds go to the filter that takes
// them (made first, for a name, if AutoCreate allows); has is true for a
// key any live version of the filter holds, and false for every key of a
// name with no filter.
func (n *Node) batch(q *request) reply {
	b, err := wire.DecodeBatch(q.frame)
	if err != nil {
		return n.bad(q)
	}
	op, refusal := access.Add, "this address may not add (--allow)"
	if b.Type == wire.TypeHasBatch {
		op, refusal = access.Read, "this address may not ask (--allow-read)"
	}
	if !n.may(q, op) {
		return n.refuse(q, wire.CodeForbidden, refusal)
	}
	if q.named {
		if rt, ok := n.reg.Route(q.name); ok || b.Flags&wire.FlagForwarded != 0 {
			if r, done := n.routed(q, b, rt); done {
				return r
			}
		}
	}
	if b.Type == wire.TypeHasBatch {
		return n.hasBatch(q, b)
	}
	target := n.reg.Default()
	if q.named {
		if target, err = n.filterFor(q.from.Addr(), q.sealed, q.name); err != nil {
			return n.refuse(q, wire.CodeRefused, err.Error())
		}
	}
	return n.addBatch(q, target, b)
}

func (n *Node) addBatch(q *request, f *registry.Filter, b wire.Batch) reply {
	var bits [wire.MaxBatchKeys / 8]byte
	keys := q.w.keys[:0]
	for key := range b.Keys.All() {
		keys = append(keys, key)
	}
	var fresh int
	var wait store.Wait
	var err error
	if b.Flags&wire.FlagAck != 0 { // refused while the filter's disk fails
		fresh, wait, err = f.Add(keys, bits[:], &q.w.sc)
	} else {
		fresh, err = f.AddUnacked(keys, bits[:], &q.w.sc)
	}
	clear(keys) // slices of a frame about to be reused
	q.w.keys = keys[:0]
	if errors.Is(err, store.ErrUnwritable) {
		q.w.c.Inc(counter.AddsUnkept)
		e := unkeptError(b.ReqID, f.Name(), err)
		out, _ := wire.AppendError(q.w.buf[:0], e)
		return reply{frame: out}
	}
	if err != nil {
		return n.refuse(q, wire.CodeRefused, fmt.Sprintf("filter %s: %v", f.Name(), err))
	}
	q.w.c.Add(counter.Adds, uint64(len(keys)))
	q.w.c.Add(counter.AddsNew, uint64(fresh))
	if b.Flags&wire.FlagAck == 0 {
		return reply{} // nobody waits for an unacknowledged add
	}
	out, _ := wire.AppendResult(q.w.buf[:0], wire.TypeAddResult, b.ReqID, len(keys), bits[:wire.BitmapLen(len(keys))])
	return reply{frame: out, wait: wait}
}

func (n *Node) hasBatch(q *request, b wire.Batch) reply {
	vs := n.reg.DefaultVersions()
	if q.named {
		vs = n.reg.Lookup(q.name)
	}
	var bits [wire.MaxBatchKeys / 8]byte
	i, yes := 0, 0
	if f := vs.Only(); f != nil {
		for key := range b.Keys.All() { // the hot loop, inlined
			if f.Has(key) {
				bits[i/8] |= 1 << (i % 8)
				yes++
			}
			i++
		}
	} else {
		for key := range b.Keys.All() {
			if vs.Has(key) {
				bits[i/8] |= 1 << (i % 8)
				yes++
			}
			i++
		}
	}
	q.w.c.Add(counter.HasQueries, uint64(i))
	q.w.c.Add(counter.HasHits, uint64(yes))
	out, _ := wire.AppendResult(q.w.buf[:0], wire.TypeHasResult, b.ReqID, i, bits[:wire.BitmapLen(i)])
	return reply{frame: out}
}

// unkeptError is the answer to acknowledged adds the node cannot keep:
// its data directory (filter's, if named) cannot be written (why). The
// cause comes first, short (e.g. "no space left on device"), so that it
// survives the cut of a reply held to its request's size.
func unkeptError(id uint32, filter string, why error) wire.ErrorFrame {
	msg := "not kept: " + store.Cause(why) + ": the data directory cannot be written; acknowledged adds are refused until it can (the node retries on its own), unacknowledged adds and reads go on"
	if filter != "" {
		msg = "filter " + filter + ": " + msg
	}
	return wire.ErrorFrame{ReqID: id, Code: wire.CodeUnwritable, Msg: []byte(msg)}
}

// errNoAutoCreate refuses an add to a filter that does not exist.
var errNoAutoCreate = errors.New("create it first: --auto-create is off")

// filterFor returns the filter that takes adds to name, creating it, for
// a client at from that may create, when AutoCreate allows.
func (n *Node) filterFor(from netip.Addr, sealed bool, name []byte) (*registry.Filter, error) {
	if f := n.reg.Lookup(name).Winner(); f != nil {
		return f, nil
	}
	if !n.cfg.AutoCreate {
		return nil, fmt.Errorf("no filter %q (%w)", name, errNoAutoCreate)
	}
	f, err := n.createFor(from, sealed, string(name), n.autoSizing())
	if err == nil && f == nil {
		err = errors.New("it is placed on other members")
	}
	if err != nil {
		return nil, fmt.Errorf("no filter %q, and it was not created: %w", name, err)
	}
	return f, nil
}

// autoSizing is what an auto-created filter is: small (AutoCreateCapacity
// at the node's FPRate), growing by Expansion, in the node's layout.
func (n *Node) autoSizing() registry.Sizing {
	return registry.Asked(n.cfg.sizing().Layout, n.cfg.AutoCreateCapacity, n.cfg.FPRate, 0, n.cfg.Expansion)
}
