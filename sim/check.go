package sim

import (
	"fmt"
	"maps"
	"reflect"
	"slices"

	"github.com/zeebo/xxh3"
)

// The checks at the end of a history, once every fault has healed and
// the replicas converged.

// fpProbes is how many keys never added each filter is asked for: at
// the target rate of 1 %, 1.25 × the target is over five standard
// deviations above it.
const fpProbes = 50_000

// maxFPRatio is how far above its target a filter's measured
// false-positive rate may be.
const maxFPRatio = 1.25

// converged returns "" when every live member holds the same catalog and
// every replica of every filter is bitwise equal, or what differs.
func (c *cluster) converged() string {
	live := c.live()
	if len(live) < len(c.members) {
		return fmt.Sprintf("%d of %d members up", len(live), len(c.members))
	}
	first := live[0]
	cat := first.n.Registry().Entries()
	rows := replicas(first)
	for _, m := range live[1:] {
		if e := m.n.Registry().Entries(); !reflect.DeepEqual(e, cat) {
			return fmt.Sprintf("catalogs differ: n%d %v, n%d %v", first.i, cat, m.i, e)
		}
		other := replicas(m)
		for k, sum := range other {
			if s, ok := rows[k]; ok && s != sum {
				return fmt.Sprintf("%s differs between n%d and n%d: %s", k, first.i, m.i, rowDiff(first, m, k))
			}
			rows[k] = sum
		}
	}
	// every member holds every named filter
	for _, m := range live {
		held := replicas(m)
		for k := range rows {
			if _, ok := held[k]; !ok && k[0] != '/' {
				return fmt.Sprintf("n%d lacks %s", m.i, k)
			}
		}
	}
	return ""
}

// rowDiff says how the replicas of the filter k on a and b differ.
func rowDiff(a, b *member, k string) string {
	ra, rb := filters(a)[k], filters(b)[k]
	width := 64
	onlyA, onlyB := 0, 0
	for r := 0; r+width <= len(ra) && r+width <= len(rb); r += width {
		extraA, extraB := false, false
		for i := r; i < r+width; i++ {
			extraA = extraA || ra[i]&^rb[i] != 0
			extraB = extraB || rb[i]&^ra[i] != 0
		}
		if extraA {
			onlyA++
		}
		if extraB {
			onlyB++
		}
	}
	return fmt.Sprintf("64-byte rows with bits only n%d has: %d, only n%d has: %d", a.i, onlyA, b.i, onlyB)
}

// replicas returns a checksum of every filter m holds (see filters).
func replicas(m *member) map[string]uint64 {
	sums := map[string]uint64{}
	for k, rows := range filters(m) {
		sums[k] = xxh3.Hash(rows)
	}
	return sums
}

// filters returns the rows of every filter m holds, by identity: a name
// and fingerprint (versions of a name created apart with the same
// sizing are one filter, their rows OR-merged, and a member merges rows
// into whichever of them it finds first, so their union is what must be
// equal — stage by stage, the version adds go to holding more stages
// than the others), or the default filter's fingerprint (members of
// another default sizing hold another default filter).
func filters(m *member) map[string][]byte {
	out := map[string][]byte{}
	for _, f := range m.n.Registry().All() {
		key := f.Name() + " " + f.Version().Def.FP.String()
		if f.IsDefault() {
			key = "/default " + f.Version().Def.FP.String()
		}
		var all []byte
		for _, s := range f.Segments() {
			rows := s.Rows()
			b, err := rows.CopyRows(nil, 0, rows.Rows())
			if err != nil {
				panic(err) // cannot happen: the whole filter's own rows
			}
			all = append(all, b...)
		}
		if prev, ok := out[key]; ok { // the union: a growing version may hold more stages than another
			if len(prev) > len(all) {
				all, prev = prev, all
			}
			for i := range prev {
				all[i] |= prev[i]
			}
		}
		out[key] = all
	}
	return out
}

// checkEnd classifies every acknowledged add, then checks the catalog
// and each filter's false-positive rate.
func (h *history) checkEnd() {
	h.r.DropsLost = len(h.dropLost) + len(h.createLost)
	h.checkAdds()
	h.checkCatalog()
	h.checkExpiredAfter()
	h.checkFPRate()
	h.checkDuring()
}

// checkAdds asks every live replica, through the real has handler, for
// every key acknowledged.
func (h *history) checkAdds() {
	type ask struct {
		filter string
		node   int
	}
	missing := map[string]bool{}
	byFilter := map[string][][]byte{}
	for _, a := range h.acks {
		h.r.Acked += len(a.keys)
		switch {
		case h.dropped[a.filter]:
			h.r.Dropped += len(a.keys)
			continue
		case h.createLost[a.filter]:
			h.r.Corrupted += len(a.keys)
			continue
		}
		byFilter[a.filter] = append(byFilter[a.filter], a.keys...)
	}
	for _, name := range slices.Sorted(maps.Keys(byFilter)) {
		keys := byFilter[name]
		for _, m := range h.c.live() {
			if name == "" && m.capacity != DefaultCapacity {
				continue // another default sizing: not a replica
			}
			for start := 0; start < len(keys); start += maxKeysPerAsk {
				batch := keys[start:min(len(keys), start+maxKeysPerAsk)]
				var got *request
				q := &request{op: Op{Kind: OpHas, Node: m.i, Filter: name}, keys: batch}
				h.cl.onAnswer = func(r *request) { got = r }
				if err := h.cl.send(q); err != nil {
					h.r.failf("client: %v", err)
					return
				}
				h.c.settle()
				switch {
				case got == nil:
					h.r.failf("lost: n%d did not answer has of %d keys in %q", m.i, len(batch), name)
					continue
				case got.err != nil:
					h.r.failf("lost: n%d answered has of %d keys in %q with error %d %q", m.i, len(batch), name, got.err.Code, got.err.Msg)
					continue
				}
				for i, k := range batch {
					if !present(got.bits, i) {
						missing[name+"\x00"+string(k)] = true
					}
				}
			}
		}
	}
	h.cl.onAnswer = h.answered
	for _, a := range h.acks {
		if h.dropped[a.filter] || h.createLost[a.filter] {
			continue
		}
		m := h.c.members[a.node]
		for _, k := range a.keys {
			switch {
			case !missing[a.filter+"\x00"+string(k)]:
				h.r.Stable++
			case h.atRisk[string(k)]:
				h.r.Corrupted++
			case !h.kept(m, a):
				h.r.Unsynced++
			default:
				h.r.failf("lost: %s acknowledged by n%d (fsync %v) at %v into %q is missing after the heal",
					k, a.node, m.fsync, a.at, a.filter)
			}
		}
	}
}

// checkCatalog: a dropped filter is gone everywhere, a created one that
// was not dropped is everywhere.
func (h *history) checkCatalog() {
	for _, m := range h.c.live() {
		for name := range h.dropOK {
			if h.dropLost[name] {
				continue
			}
			if vs := versions(m, name); len(vs) > 0 {
				h.r.failf("drop: n%d still holds %q (%d versions) after its drop was acknowledged", m.i, name, len(vs))
			}
		}
		for name := range h.created {
			if !h.dropped[name] && !h.createLost[name] && len(versions(m, name)) == 0 {
				h.r.failf("create: n%d lacks %q, created and never dropped", m.i, name)
			}
		}
	}
}

// checkFPRate asks every filter of one member for keys never added.
func (h *history) checkFPRate() {
	live := h.c.live()
	if len(live) == 0 {
		return
	}
	m := live[0]
	for _, f := range m.n.Registry().All() {
		if n := len(f.Segments()); n > 1 {
			h.r.Grown++
			h.r.Stages = max(h.r.Stages, n)
		}
		target := f.Version().Def.FPRate
		if target == 0 {
			continue
		}
		hits := 0
		for i := range fpProbes {
			if f.Has(fmt.Appendf(nil, "absent-%d", i)) {
				hits++
			}
		}
		rate := float64(hits) / fpProbes
		if est := f.ReadStats().EstimatedKeys; est >= 0.5*float64(f.Version().Def.Capacity) {
			h.r.Full++
			h.r.FPRatio = max(h.r.FPRatio, rate/target)
		}
		if rate > maxFPRatio*target {
			h.r.failf("fp rate: %q on n%d answers %.4f of absent keys present, over %.2f × its target %.4f (~%.0f keys)",
				f.Name(), m.i, rate, maxFPRatio, target, f.ReadStats().EstimatedKeys)
		}
	}
}
