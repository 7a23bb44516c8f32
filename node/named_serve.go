package node

import (
	"errors"
	"net/netip"

	"github.com/rmbd/rmbd/wire"
)

// namedFrame serves a batch addressed to a named filter: adds go to the
// version that takes them (created first if AutoCreate allows), has is
// true for a key any live version holds; a name with no filter answers
// false for every key.
func (n *Node) namedFrame(w *worker, frame []byte, from netip.AddrPort, out []byte) []byte {
	c := w.c
	nf, err := wire.DecodeNamed(frame)
	if err != nil {
		return c.bad(out)
	}
	t := wire.Type(nf.Inner[0])
	if t != wire.TypeAddBatch && t != wire.TypeHasBatch {
		return n.namedSync(w, nf.Name, nf.Inner, from, out)
	}
	b, err := wire.DecodeBatch(nf.Inner)
	if err != nil {
		return c.bad(out)
	}
	if !n.mayBatch(t, from) {
		return n.refuseBatch(c, t, nf.Inner, out)
	}
	if string(nf.Name) == DefaultFilter {
		return n.batchOn(w, n.f, n.st, b, out)
	}
	if t == wire.TypeAddBatch {
		target, err := n.namedFor(nf.Name)
		if err != nil {
			return n.refuse(out, nf.Inner, wire.CodeRefused, err.Error())
		}
		target.mu.RLock()
		defer target.mu.RUnlock()
		if target.dropped {
			return n.refuse(out, nf.Inner, wire.CodeRefused, "filter "+string(nf.Name)+" was dropped")
		}
		return n.batchOn(w, target.f, target.st, b, out)
	}
	return n.namedHas(w, n.named.lookup(nf.Name), b, out)
}

// namedHas answers a has batch from every live version of a name.
func (n *Node) namedHas(w *worker, vs []*namedFilter, b wire.Batch, out []byte) []byte {
	var bits [wire.MaxBatchKeys / 8]byte
	i, yes := 0, 0
	for key := range b.Keys.All() {
		for _, nf := range vs {
			if nf.f.Has(key) {
				bits[i/8] |= 1 << (i % 8)
				yes++
				break
			}
		}
		i++
	}
	w.c.add(HasQueries, uint64(i))
	w.c.add(HasHits, uint64(yes))
	out, _ = wire.AppendResult(out, wire.TypeHasResult, b.ReqID, i, bits[:wire.BitmapLen(i)])
	return out
}

// filterRequest serves a filter request: create, drop, info or list.
// They change or describe the node's catalog, so they are admin requests.
func (n *Node) filterRequest(w *worker, frame []byte, from netip.AddrPort, out []byte) []byte {
	c := w.c
	q, err := wire.DecodeFilterRequest(frame)
	if err != nil {
		return c.bad(out)
	}
	if !n.mayAdmin(from, w.sealed) {
		c.drop(Forbidden)
		return n.refuse(out, frame, wire.CodeForbidden, "filters: this address may not ask (--allow-admin)")
	}
	name := string(q.Name)
	var descs []wire.FilterDesc
	var flags uint8
	switch q.Op {
	case wire.FilterOpCreate:
		nf, err := n.createNamed(name, q.Layout, q.Capacity, q.FPRate)
		if err != nil {
			return n.refuse(out, frame, wire.CodeRefused, err.Error())
		}
		descs = append(descs, n.describe(name, []*namedFilter{nf}))
	case wire.FilterOpDrop:
		if err := n.dropNamed(name); err != nil {
			return n.refuse(out, frame, wire.CodeRefused, err.Error())
		}
	case wire.FilterOpInfo:
		d, ok := n.describeName(name)
		if !ok {
			return n.refuse(out, frame, wire.CodeRefused, "no filter "+name)
		}
		descs = append(descs, d)
	case wire.FilterOpList:
		names := append([]string{DefaultFilter}, n.named.names()...)
		for _, nm := range names {
			if name != "" && nm <= name {
				continue
			}
			if len(descs) == wire.MaxFilterInfos {
				flags |= wire.FiltersMore
				break
			}
			if d, ok := n.describeName(nm); ok {
				descs = append(descs, d)
			}
		}
	}
	out, err = wire.AppendFilters(out, q.ReqID, flags, descs)
	if errors.Is(err, wire.ErrValue) {
		return n.refuse(out, frame, wire.CodeRefused, "a filter could not be described")
	}
	return out
}

// names lists the named filters, sorted.
func (nm *named) names() []string {
	nm.mu.RLock()
	defer nm.mu.RUnlock()
	return nm.cat.Names()
}

// describeName describes the filter called name, the default included.
func (n *Node) describeName(name string) (wire.FilterDesc, bool) {
	if name == DefaultFilter {
		fs := n.cachedFilterStats()
		d := wire.FilterDesc{Name: []byte(DefaultFilter), Gen: 1, Origin: n.name, FP: n.f.Fingerprint(),
			Keys: uint64(fs.EstimatedKeys), FillPPM: uint32(fs.Fill * 1e6)}
		if n.cfg.Profile != ProfileClassic {
			d.Capacity, d.FPRate = n.cfg.Capacity, n.cfg.FPRate
		}
		return d, true
	}
	vs := n.named.lookup([]byte(name))
	if len(vs) == 0 {
		return wire.FilterDesc{}, false
	}
	return n.describe(name, vs), true
}

// describe describes a named filter by its winning version vs[0]. Its
// figures are as of the last background refresh.
func (n *Node) describe(name string, vs []*namedFilter) wire.FilterDesc {
	v := vs[0].v
	d := wire.FilterDesc{Name: []byte(name), Conflicts: uint8(min(len(vs)-1, 255)), Gen: v.Gen, Created: v.Created,
		Origin: []byte(v.Origin), FP: v.Def.FP, Capacity: v.Def.Capacity, FPRate: v.Def.FPRate}
	if fs := vs[0].stats.Load(); fs != nil {
		d.Keys, d.FillPPM = uint64(fs.EstimatedKeys), uint32(fs.Fill*1e6)
	}
	return d
}
