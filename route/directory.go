package route

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Directory is where the members are, as one node sees them: their data
// addresses by name, those a forward did not reach lately (asked last for
// a while: a member cut off costs one timeout, not one per request), and
// those that left gracefully, handing their filters off (asked first for
// the rows of filters taken over from them). Safe for concurrent use; the
// request path reads it without a lock.
type Directory struct {
	self  string
	addrs atomic.Pointer[map[string]netip.AddrPort]
	// failed: member name → when a forward to it last failed; left:
	// member name → departure.
	failed, left sync.Map
	now          func() time.Time
}

// departure is a member that left gracefully.
type departure struct {
	addr netip.AddrPort
	at   time.Time
}

// Times the directory keeps what it heard.
const (
	// SuspectFor is how long a member a forward did not reach is asked
	// last.
	SuspectFor = 2 * time.Second
	// LeftFor is how long a member that left is asked for the rows of its
	// filters (it waits that long at most for them to be taken).
	LeftFor = 30 * time.Second
)

// NewDirectory returns the directory of the node called self, its clock
// now (nil: time.Now).
func NewDirectory(self string, now func() time.Time) *Directory {
	if now == nil {
		now = time.Now
	}
	d := &Directory{self: self, now: now}
	d.addrs.Store(&map[string]netip.AddrPort{})
	return d
}

// Set replaces the members' data addresses by name.
func (d *Directory) Set(addrs map[string]netip.AddrPort) { d.addrs.Store(&addrs) }

// Addr returns the data address of the member called name.
func (d *Directory) Addr(name string) (netip.AddrPort, bool) {
	a, ok := (*d.addrs.Load())[name]
	return a, ok
}

// Ranked returns the members named in ranked (a filter's route, its
// owners first) as route asks them, this node marked; those a forward did
// not reach lately come after the others of their group (the owners,
// then the rest). Members of unknown address are left out.
func (d *Directory) Ranked(ranked []string, owners int) []Member {
	addrs, now := *d.addrs.Load(), d.now()
	out := make([]Member, 0, len(ranked))
	var late []Member
	for i, name := range ranked {
		if i == owners {
			out, late = append(out, late...), late[:0]
		}
		a, ok := addrs[name]
		if !ok {
			continue
		}
		m := Member{Name: name, Addr: a, Self: name == d.self}
		if at, failed := d.failed.Load(name); failed && now.Sub(at.(time.Time)) < SuspectFor {
			late = append(late, m)
			continue
		}
		out = append(out, m)
	}
	return append(out, late...)
}

// Unreached notes a member a forward did not reach.
func (d *Directory) Unreached(m Member) { d.failed.Store(m.Name, d.now()) }

// Left notes a member that left gracefully, at addr.
func (d *Directory) Left(name string, addr netip.AddrPort) {
	d.left.Store(name, departure{addr, d.now()})
}

// HasLeft reports whether the member called name left lately.
func (d *Directory) HasLeft(name string) bool {
	v, ok := d.left.Load(name)
	return ok && d.now().Sub(v.(departure).at) < LeftFor
}

// FillFrom lists the members to ask for the rows of a filter whose route
// is ranked: Ranked, then those that left lately (handing their filters
// off: of a filter on one member, they alone hold its rows; a member
// that holds it ready comes first, having every add since they left).
func (d *Directory) FillFrom(ranked []string, owners int) []Member {
	out := d.Ranked(ranked, owners)
	now := d.now()
	d.left.Range(func(k, v any) bool {
		if dep := v.(departure); now.Sub(dep.at) < LeftFor {
			out = append(out, Member{Name: k.(string), Addr: dep.addr})
		} else {
			d.left.Delete(k)
		}
		return true
	})
	return out
}
