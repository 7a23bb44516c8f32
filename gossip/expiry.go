package gossip

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/rmbd/rmbd/internal/mutate"
)

// Filters that expire. A name's live generation may have a deadline (an
// absolute time, EXPIRE's), set and cleared (PERSIST) on any member: a
// last-writer-wins register per generation, the latest setting winning
// (then the later deadline, then the setter's name), so that members that
// have seen the same settings agree whatever order they came in. At its
// deadline every member drops the generation on its own, with a tombstone
// dated at the deadline itself: the same tombstone on every member, as
// if one drop had been made at that instant and gossiped. A member that
// was down at the deadline drops the filter as it comes back (the
// deadline is in its catalog, on disk), and a member that never heard of
// the deadline gets the tombstone with the rest.

// Expiry is a generation's deadline, and when and by whom it was set.
type Expiry struct {
	Gen      uint64
	Deadline int64  // Unix milliseconds; 0: none (PERSIST)
	Set      int64  // Unix milliseconds at the setting node
	By       string // the setting node's name
}

// later orders settings of one generation: the one that wins first.
func later(a, b Expiry) int {
	return cmp.Or(cmp.Compare(b.Set, a.Set), cmp.Compare(b.Deadline, a.Deadline), cmp.Compare(b.By, a.By))
}

// SetDeadline gives name's live generation a deadline (the zero time:
// none), set by node by at now. A setting made on a node whose clock is
// behind the last one's still wins here: it is dated just after it.
func (c *Catalog) SetDeadline(name string, deadline time.Time, by string, now time.Time) (Expiry, error) {
	w, ok := c.Winner(name)
	if !ok {
		return Expiry{}, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	e := c.entries[name]
	x := Expiry{Gen: w.Gen, Set: now.UnixMilli(), By: by}
	if !deadline.IsZero() {
		x.Deadline = max(deadline.UnixMilli(), 1)
	}
	if old, ok := e.expiry(w.Gen); ok && old.Set >= x.Set {
		x.Set = old.Set + 1
	}
	e.Expiries = append(e.Expiries, x)
	e.prune()
	return x, nil
}

// Deadline returns the deadline of name's live generation: ok is false
// for a name with no filter, and the time zero for one without a deadline.
func (c *Catalog) Deadline(name string) (deadline time.Time, ok bool) {
	w, ok := c.Winner(name)
	if !ok {
		return time.Time{}, false
	}
	if x, set := c.entries[name].expiry(w.Gen); set && x.Deadline != 0 {
		return time.UnixMilli(x.Deadline), true
	}
	return time.Time{}, true
}

// DropDue drops every live generation whose deadline is at or before now,
// each with a tombstone dated at its deadline. It returns the names
// dropped, sorted.
func (c *Catalog) DropDue(now time.Time) []string {
	if mutate.DeadlinesMissed {
		return nil
	}
	ms := now.UnixMilli()
	var dropped []string
	for name, e := range c.entries {
		if len(e.Versions) == 0 {
			continue
		}
		gen := e.Versions[0].Gen
		if x, ok := e.expiry(gen); ok && x.Deadline != 0 && x.Deadline <= ms {
			e.Drops = append(e.Drops, Tombstone{Gen: gen, At: x.Deadline})
			e.prune()
			dropped = append(dropped, name)
		}
	}
	slices.Sort(dropped)
	return dropped
}

// expiry returns the winning setting of generation gen.
func (e *Entry) expiry(gen uint64) (Expiry, bool) {
	for _, x := range e.Expiries {
		if x.Gen == gen {
			return x, true
		}
	}
	return Expiry{}, false
}

// pruneExpiries keeps one setting per generation, the winning one, and
// none for a generation dropped.
func (e *Entry) pruneExpiries() {
	if len(e.Expiries) == 0 {
		e.Expiries = nil
		return
	}
	dropped := e.dropGen()
	e.Expiries = slices.DeleteFunc(e.Expiries, func(x Expiry) bool { return x.Gen <= dropped })
	slices.SortFunc(e.Expiries, func(a, b Expiry) int { return cmp.Or(cmp.Compare(a.Gen, b.Gen), later(a, b)) })
	e.Expiries = slices.CompactFunc(e.Expiries, func(a, b Expiry) bool { return a.Gen == b.Gen })
	if len(e.Expiries) == 0 {
		e.Expiries = nil
	}
}
