package access

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// Quotas. Admins create what they like within the node's bounds
// (--max-filters, --max-memory); every other client that may create —
// by --auto-create's list — is held to a quota: so many creates a minute
// and so many filters held per source, and, all such clients together,
// half the node's bounds, so that a storm of creates from anywhere leaves
// room for the admins' own. A source is an IPv4 address or an IPv6 /64
// (what one machine can spend without effort).

// ErrQuota reports a create refused by a quota.
var ErrQuota = errors.New("over quota")

// maxSources bounds the sources a Creators remembers; past it, one that
// holds no filter makes room.
const maxSources = 4096

// Quota bounds what clients that are not admins may create; a zero
// field is no bound.
type Quota struct {
	PerMinute int    // creates one source may make a minute
	PerSource int    // filters one source may hold: created, not dropped
	Filters   int    // filters every such source together may hold
	Bytes     uint64 // the memory of those filters together
}

// Creators holds what each source created, for its quota. Live says
// whether a filter a source created is still there (not dropped, by
// anyone, anywhere): a source holds only what lives.
type Creators struct {
	q    Quota
	live func(name string) bool

	mu  sync.Mutex
	src map[netip.Prefix]*creator
}

type creator struct {
	tokens float64   // creates it may make now
	at     time.Time // when tokens was last refilled
	held   map[string]*hold
}

// hold is a name a source holds: creates of it in flight (reserved, not
// yet done), or one it made.
type hold struct {
	bytes   uint64
	pending int  // creates reserved and not yet Done
	made    bool // one of them made the filter
}

// NewCreators returns an empty Creators for quota q.
func NewCreators(q Quota, live func(name string) bool) *Creators {
	return &Creators{q: q, live: live, src: make(map[netip.Prefix]*creator)}
}

// SourceOf returns the source an address counts as.
func SourceOf(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

// Reserve counts a create of name, bytes large, by from at now against
// its quota, or says which bound refuses it (ErrQuota). Every reserved
// create is then Done: the name is held while any is in flight, and
// after while the filter one of them made lives.
func (c *Creators) Reserve(from netip.Addr, name string, bytes uint64, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := SourceOf(from)
	cr := c.source(k, now)
	if err := c.check(cr, bytes); err != nil {
		return err
	}
	cr.tokens--
	h := cr.held[name]
	if h == nil {
		h = &hold{}
		cr.held[name] = h
	}
	h.bytes, h.pending = bytes, h.pending+1
	return nil
}

// Done ends a reserved create of name by from: created says it made the
// filter (it stays counted as from's while it lives); otherwise the
// create is given back, and the name with it unless another create of
// from's made it or is in flight.
func (c *Creators) Done(from netip.Addr, name string, created bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cr := c.src[SourceOf(from)]
	h := cr.heldName(name)
	if h == nil {
		return
	}
	h.pending--
	if created {
		h.made = true
		return
	}
	cr.tokens = min(cr.tokens+1, float64(c.q.PerMinute))
	if h.pending == 0 && !h.made {
		delete(cr.held, name)
	}
}

func (cr *creator) heldName(name string) *hold {
	if cr == nil {
		return nil
	}
	return cr.held[name]
}

// check says whether cr may create a filter of bytes more.
func (c *Creators) check(cr *creator, bytes uint64) error {
	filters, total := c.held()
	switch {
	case c.q.PerMinute > 0 && cr.tokens < 1:
		return fmt.Errorf("%w: this address made %d creates in the last minute (--creates-per-minute); try again later", ErrQuota, c.q.PerMinute)
	case c.q.PerSource > 0 && len(cr.held) >= c.q.PerSource:
		return fmt.Errorf("%w: this address holds %d filters it created (--filters-per-source); drop one first", ErrQuota, len(cr.held))
	case c.q.Filters > 0 && filters >= c.q.Filters:
		return fmt.Errorf("%w: clients that are not admins hold %d filters together, their share of --max-filters; an admin may create more", ErrQuota, filters)
	case c.q.Bytes > 0 && total+bytes > c.q.Bytes:
		return fmt.Errorf("%w: clients that are not admins hold %d bytes of filters together; %d more is past their share of --max-memory", ErrQuota, total, bytes)
	}
	return nil
}

// held forgets what no longer lives — names no create of which is in
// flight and whose filter is gone — and returns what every source holds.
func (c *Creators) held() (filters int, bytes uint64) {
	for _, cr := range c.src {
		for name, h := range cr.held {
			if h.pending == 0 && !c.live(name) {
				delete(cr.held, name)
				continue
			}
			filters++
			bytes += h.bytes
		}
	}
	return filters, bytes
}

// source returns k's creator, its tokens refilled to now, making room
// for it if the table is full.
func (c *Creators) source(k netip.Prefix, now time.Time) *creator {
	cr := c.src[k]
	if cr == nil {
		if len(c.src) >= maxSources {
			c.evict()
		}
		cr = &creator{tokens: float64(c.q.PerMinute), at: now, held: make(map[string]*hold)}
		c.src[k] = cr
	}
	if d := now.Sub(cr.at); d > 0 {
		cr.tokens = min(cr.tokens+d.Minutes()*float64(c.q.PerMinute), float64(c.q.PerMinute))
		cr.at = now
	}
	return cr
}

// evict forgets the source that holds no filter and refilled longest
// ago (a source holding filters is kept: the Filters share bounds them).
func (c *Creators) evict() {
	var oldest netip.Prefix
	var at time.Time
	for k, cr := range c.src {
		if len(cr.held) == 0 && (at.IsZero() || cr.at.Before(at)) {
			oldest, at = k, cr.at
		}
	}
	delete(c.src, oldest)
}
