package sim

import (
	"time"
)

// Filters that expire: an expire gives a named filter a deadline a few
// seconds ahead through one member; the catalog carries it to the
// others, and at it every member drops the filter on its own. The
// promises checked:
//   - no member that knows the deadline holds the filter more than
//     expireSlack past it (checkDuring);
//   - a member that acknowledged the expire and crashed comes back with
//     the deadline, or the tombstone, from its disk (restarted);
//   - after the heal no member holds it, and every tombstone of it is
//     dated at the deadline: dropped by the deadline, not before.

// expireSlack is how late past its deadline a member may still hold a
// filter: its housekeeping runs every 250 ms.
const expireSlack = time.Second

// expiring is what the history knows of the expires acknowledged.
type expiring struct {
	ok map[string]time.Time // name → the deadline acknowledged
	by map[string]int       // name → the member that acknowledged it
}

// expired is told of an expire's answer.
func (h *history) expired(q *request) {
	if q.err != nil {
		return
	}
	if _, seen := h.exp.ok[q.op.Filter]; !seen {
		h.exp.ok[q.op.Filter], h.exp.by[q.op.Filter] = q.deadline, q.op.Node
	}
}

// checkExpiredDuring: no member holds a filter past its deadline and the
// slack, by its own clock (a member whose clock is behind drops late by
// as much: the clock skew a window tolerates is the operator's to keep),
// once it knows the deadline.
func (h *history) checkExpiredDuring() {
	for name := range h.exp.ok {
		for _, m := range h.c.members {
			if m.n == nil {
				continue
			}
			if d, ok := m.n.Registry().Deadline(name); ok && !d.IsZero() && m.now().After(d.Add(expireSlack)) {
				now := m.now()
				h.r.failf("expire: n%d at %v still holds %q, %v past its deadline by its clock", m.i, h.c.elapsed(), name, now.Sub(d))
			}
		}
	}
}

// checkExpiredAfter: after the heal the filter is gone everywhere, each
// tombstone of it dated at its deadline.
func (h *history) checkExpiredAfter() {
	for name, d := range h.exp.ok {
		if h.dropLost[name] {
			continue
		}
		for _, m := range h.c.live() {
			if vs := versions(m, name); len(vs) > 0 {
				h.r.failf("expire: n%d still holds %q after the heal, its deadline %v past", m.i, name, time.Since(d))
			}
			for _, t := range m.n.Registry().Entry(name).Drops {
				if t.At != d.UnixMilli() {
					h.r.failf("expire: n%d dropped %q at %v, not at its deadline %v", m.i, name, time.UnixMilli(t.At), d)
				}
			}
		}
	}
}

// restartedExpiring: a member that acknowledged an expire has its
// deadline, or the tombstone, from its disk.
func (h *history) restartedExpiring(m *member) {
	reg := m.n.Registry()
	for name, by := range h.exp.by {
		e := reg.Entry(name)
		if by == m.i && !h.dropLost[name] && !h.lostCatalog(m) && !hasDeadline(e) {
			h.r.failf("durability: n%d restarted at %v without the deadline of %q, whose expire it acknowledged", m.i, h.c.elapsed(), name)
		}
	}
}
