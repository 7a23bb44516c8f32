package sim

import (
	"fmt"
	"math/rand/v2"
	"path"
	"slices"
	"time"

	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/store"
	"github.com/rmbd/rmbd/wire"
)

// The history: what the client asked and was answered, and the checks
// made of it during the run (answers, bounds, tombstones) and at its end
// (every acknowledged add, the catalog, the false-positive rate).

// flushWindow is how much an everysec member may lose in a crash: the
// adds it acknowledged within its last flush interval (one second), plus
// the tick the simulator's clock moves by.
const flushWindow = time.Second + tick

// ackRec is an add the cluster acknowledged.
type ackRec struct {
	keys   [][]byte
	fresh  [][]byte // the keys that changed the filter: the member logged them
	filter string
	node   int
	at     time.Duration
	// loaded: keys a load put there (copy.go), on disk at a checkpoint
	// only, unless under --fsync always.
	loaded bool
}

type history struct {
	c   *cluster
	r   *Report
	cl  *client
	rng *rand.Rand

	acks    []*ackRec
	nextKey int
	created map[string]bool // creates acknowledged
	dropped map[string]bool // drops asked for (the name is never used again)
	dropOK  map[string]bool // drops acknowledged
	// atRisk are keys whose only copy was on a disk that was corrupted.
	atRisk map[string]bool
	// floors is, per member, the highest generation of each name it has
	// been seen to have dropped: no version at or below it may live there
	// again.
	floors map[int]map[string]uint64
	// corrupted is when each member to be corrupted last stopped.
	corrupted map[int]time.Duration
	// dropBy is the member that acknowledged each drop; riskyDrops the
	// drops a member to be corrupted acknowledged and no other member had
	// heard of when it stopped; dropLost those lost with its CATALOG.
	dropBy     map[string]int
	riskyDrops map[int][]string
	dropLost   map[string]bool
	// The same for creates.
	createBy     map[string]int
	riskyCreates map[int][]string
	createLost   map[string]bool
	// catalogAside marks the members whose CATALOG a bit flip damaged.
	catalogAside map[int]bool
	// exp is the expires acknowledged (expire.go); one lost with a
	// CATALOG is in dropLost.
	exp expiring
}

func newHistory(c *cluster, r *Report) *history {
	h := &history{c: c, r: r, rng: rand.New(rand.NewPCG(c.plan.Seed, 0xa5)), created: map[string]bool{},
		dropped: map[string]bool{}, dropOK: map[string]bool{}, atRisk: map[string]bool{},
		floors: map[int]map[string]uint64{}, corrupted: map[int]time.Duration{}, dropBy: map[string]int{},
		riskyDrops: map[int][]string{}, dropLost: map[string]bool{}, createBy: map[string]int{},
		riskyCreates: map[int][]string{}, createLost: map[string]bool{}, catalogAside: map[int]bool{},
		exp: expiring{ok: map[string]time.Time{}, by: map[string]int{}}}
	h.cl = newClient(c, h.answered)
	c.corrupt, c.flipped = h.corrupt, h.flipped
	c.restarted = h.restarted
	return h
}

// actions are the plan's requests, each at its moment.
func (h *history) actions() []action {
	var acts []action
	for _, op := range h.c.plan.Ops {
		acts = append(acts, action{op.At, func() { h.send(op) }})
	}
	return acts
}

func (h *history) send(op Op) {
	q := &request{op: op}
	switch op.Kind {
	case OpAdd, OpAddNoAck:
		for range op.Keys {
			q.keys = append(q.keys, fmt.Appendf(nil, "k%d-%d", h.c.plan.Seed, h.nextKey))
			h.nextKey++
		}
	case OpHas:
		q.op.Filter, q.keys = h.askable(op.Node)
		if len(q.keys) == 0 {
			return
		}
	case OpDrop:
		h.dropped[op.Filter] = true
	case OpExpire:
		h.dropped[op.Filter], q.deadline = true, time.Now().Add(op.TTL)
	case OpCopy:
		h.copyFilter(op)
		return
	}
	if err := h.cl.send(q); err != nil {
		h.r.failf("client: %v", err)
	}
}

// askable draws keys of one filter that member i acknowledged and must
// still answer present: the filter not dropped, the member's disk not
// corrupted since, and not lost to a crash it was allowed to lose them in.
func (h *history) askable(i int) (name string, keys [][]byte) {
	m := h.c.members[i]
	var ok []*ackRec
	for _, a := range h.acks {
		if a.node == i && !h.dropped[a.filter] && h.corrupted[i] <= a.at && h.kept(m, a) {
			ok = append(ok, a)
		}
	}
	if len(ok) == 0 {
		return "", nil
	}
	name = ok[h.rng.IntN(len(ok))].filter
	for _, a := range slices.Backward(ok) { // the newest first: the riskiest
		if a.filter != name {
			continue
		}
		for _, k := range a.keys {
			if len(keys) < maxKeysPerAsk && h.rng.IntN(4) == 0 {
				keys = append(keys, k)
			}
		}
	}
	return name, keys
}

// crashedSince reports whether m crashed at or after t.
func crashedSince(m *member, t time.Duration) bool {
	return len(m.crashes) > 0 && m.crashes[len(m.crashes)-1] >= t
}

// kept reports whether member m must have kept add a across its crashes:
// always under --fsync always; under everysec, unless it crashed within
// its flush interval after acknowledging.
func (h *history) kept(m *member, a *ackRec) bool {
	if m.fsync == store.FsyncAlways {
		return true
	}
	if a.loaded {
		return !crashedSince(m, a.at)
	}
	for _, t := range m.crashes {
		if t >= a.at && t-a.at <= flushWindow {
			return false
		}
	}
	return true
}

// answered takes an answer as the network delivers it.
func (h *history) answered(q *request) {
	if q.other != "" {
		h.r.failf("n%d answered %v with %s", q.op.Node, q.op.Kind, q.other)
		return
	}
	h.r.Answers[q.op.Kind]++
	if q.err != nil {
		h.r.Errors[q.err.Code]++
		if !expectedCodes[q.err.Code] {
			h.r.failf("client: n%d answered %v of %q with error %d %q", q.op.Node, q.op.Kind, q.op.Filter, q.err.Code, q.err.Msg)
		}
	}
	switch q.op.Kind {
	case OpAdd:
		if q.err == nil {
			a := &ackRec{keys: q.keys, filter: q.op.Filter, node: q.op.Node, at: h.c.elapsed()}
			for i, k := range q.keys {
				if present(q.bits, i) {
					a.fresh = append(a.fresh, k)
				}
			}
			h.acks = append(h.acks, a)
		}
	case OpHas:
		h.r.Asked++
		if crashedSince(h.c.members[q.op.Node], q.sentAt) {
			return // the request waited out a restart: it asked a member that may have lost them
		}
		if q.err != nil {
			h.r.failf("read your writes: n%d answered has of keys it acknowledged with error %d %q", q.op.Node, q.err.Code, q.err.Msg)
			return
		}
		for i, k := range q.keys {
			if !present(q.bits, i) {
				h.r.failf("read your writes: n%d at %v answered %s absent (filter %q), a key it acknowledged; in memory %v",
					q.op.Node, h.c.elapsed(), k, q.op.Filter, versions(h.c.members[q.op.Node], q.op.Filter).Has(k))
			}
		}
	case OpCreate:
		if q.err == nil && !h.created[q.op.Filter] {
			h.created[q.op.Filter] = true
			h.createBy[q.op.Filter] = q.op.Node
		}
	case OpExpire:
		h.expired(q)
	case OpDrop:
		if q.err == nil && !h.dropOK[q.op.Filter] {
			h.dropOK[q.op.Filter] = true
			h.dropBy[q.op.Filter] = q.op.Node
		}
	}
}

// restarted checks a member back from a crash before it hears from any
// other: every key it acknowledged and logged (its add changed the
// filter) is there, from its disk alone — under --fsync always all of
// them, under everysec all but those within its flush interval before the
// crash. (A key whose bits were already set, merged from a member, is
// that member's to keep: the add logs nothing.)
func (h *history) restarted(m *member) {
	for _, a := range h.acks {
		if a.node != m.i || h.dropped[a.filter] || h.corrupted[m.i] > a.at || !h.kept(m, a) {
			continue
		}
		vs := versions(m, a.filter)
		for _, k := range a.fresh {
			if !vs.Has(k) {
				h.r.failf("durability: n%d (fsync %v) restarted at %v without %s, which it acknowledged at %v into %q",
					m.i, m.fsync, h.c.elapsed(), k, a.at, a.filter)
			}
		}
	}
	// The catalog is written before a create or drop is answered.
	reg := m.n.Registry()
	for name, by := range h.createBy {
		if e := reg.Entry(name); by == m.i && !h.createLost[name] && !h.lostCatalog(m) && !known(e) {
			h.r.failf("durability: n%d restarted at %v without %q, whose create it acknowledged", m.i, h.c.elapsed(), name)
		}
	}
	for name, by := range h.dropBy {
		if e := reg.Entry(name); by == m.i && !h.dropLost[name] && !h.lostCatalog(m) && !dropped(e) {
			h.r.failf("durability: n%d restarted at %v without the tombstone of %q, whose drop it acknowledged", m.i, h.c.elapsed(), name)
		}
	}
	h.restartedExpiring(m)
	// What it had only heard of may be gone with the crash (a catalog
	// merged from a member is written after): it learns it again.
	h.floors[m.i] = nil
}

// lostCatalog reports whether m's CATALOG was set aside after a bit flip.
func (h *history) lostCatalog(m *member) bool { return h.catalogAside[m.i] }

// expectedCodes are the errors a fault or the workload explains: a
// filter not (yet, or any longer) on the member, a disk that died, a node
// too busy or shutting down. Any other is the simulator's client or the
// node at fault.
var expectedCodes = map[uint16]bool{wire.CodeRefused: true, wire.CodeUnwritable: true, wire.CodeBusy: true,
	wire.CodeUnavailable: true}

// corrupt is told that m stopped and its disk is to be corrupted: the
// keys it acknowledged that no other member holds now, and the drops it
// acknowledged that no other member has heard of, may be lost with it.
func (h *history) corrupt(m *member) {
	h.corrupted[m.i] = h.c.elapsed()
	h.markAtRisk(m)
	h.riskyDrops[m.i], h.riskyCreates[m.i] = nil, nil
	for name := range h.dropOK {
		if h.dropBy[name] == m.i && !h.elsewhere(m, name, dropped) {
			h.riskyDrops[m.i] = append(h.riskyDrops[m.i], name)
		}
	}
	for name, by := range h.exp.by {
		if by == m.i && !h.elsewhere(m, name, hasDeadline) {
			h.riskyDrops[m.i] = append(h.riskyDrops[m.i], name)
		}
	}
	for name := range h.created {
		if h.createBy[name] == m.i && !h.elsewhere(m, name, known) {
			h.riskyCreates[m.i] = append(h.riskyCreates[m.i], name)
		}
	}
}

// flipped is told which of m's files a bit flipped in. A damaged CATALOG
// is set aside by --repair: the drops only m knew are lost, and m knows
// no drop until the members tell it again.
func (h *history) flipped(m *member, file string) {
	// Keys whose other holders went down (or were corrupted) since m
	// stopped are at risk too: the flipped bit may have hit their last
	// copy on a disk.
	h.markAtRisk(m)
	if path.Base(file) == "CATALOG" {
		for _, name := range h.riskyDrops[m.i] {
			h.dropLost[name] = true
		}
		for _, name := range h.riskyCreates[m.i] {
			h.createLost[name] = true
		}
		h.floors[m.i] = nil
		h.catalogAside[m.i] = true
	}
	h.riskyDrops[m.i], h.riskyCreates[m.i] = nil, nil
}

// elsewhere reports whether the catalog entry of name on a member up
// other than m says what said does.
func (h *history) elsewhere(m *member, name string, said func(gossip.Entry) bool) bool {
	for _, o := range h.c.members {
		if o != m && o.n != nil && said(o.n.Registry().Entry(name)) {
			return true
		}
	}
	return false
}

// dropped, known and hasDeadline say what an entry holds: a tombstone (or
// the floor a forgotten one left), anything at all, a deadline or its
// tombstone.
func dropped(e gossip.Entry) bool     { return e.Floor > 0 || len(e.Drops) > 0 }
func known(e gossip.Entry) bool       { return dropped(e) || len(e.Versions) > 0 }
func hasDeadline(e gossip.Entry) bool { return dropped(e) || len(e.Expiries) > 0 }

// markAtRisk marks the keys m acknowledged that no other member up now
// holds: their only copy may be on m's disk, which is to be corrupted.
func (h *history) markAtRisk(m *member) {
	for _, a := range h.acks {
		if a.node != m.i || h.dropped[a.filter] {
			continue
		}
		for _, k := range a.keys {
			if !h.heldElsewhere(m, a.filter, k) {
				h.atRisk[string(k)] = true
			}
		}
	}
}

func (h *history) heldElsewhere(m *member, name string, key []byte) bool {
	for _, o := range h.c.members {
		if o != m && o.n != nil && versions(o, name).Has(key) {
			return true
		}
	}
	return false
}

// versions returns the live versions of name ("" the default) on m.
func versions(m *member, name string) registry.Versions {
	if name == "" {
		return m.n.Registry().DefaultVersions()
	}
	return m.n.Registry().Lookup([]byte(name))
}

// checkDuring checks what must hold at every moment: bounds, and that
// no dropped generation lives again where its drop was seen.
func (h *history) checkDuring() {
	h.checkExpiredDuring()
	for _, m := range h.c.members {
		if m.n == nil {
			continue
		}
		reg := m.n.Registry()
		if used, limit := reg.Memory(); limit > 0 && used > uint64(limit) {
			h.r.failf("bounds: n%d holds %d bytes of filters, over its %d", m.i, used, limit)
		}
		st := m.n.Stats()
		if others := len(h.c.members) - 1; st.Peers > others {
			h.r.failf("bounds: n%d has %d peers, and there are %d other members", m.i, st.Peers, others)
		}
		if st.Buffers.Peak > maxBufferBytes {
			h.r.failf("bounds: n%d lent %d buffer bytes, over %d", m.i, st.Buffers.Peak, maxBufferBytes)
		}
		if h.floors[m.i] == nil {
			h.floors[m.i] = map[string]uint64{}
		}
		floors := h.floors[m.i]
		for _, e := range reg.Entries() {
			for _, v := range e.Versions {
				if v.Gen <= floors[e.Name] {
					h.r.failf("tombstones: n%d at %v holds %q generation %d, which it had dropped", m.i, h.c.elapsed(), e.Name, v.Gen)
				}
			}
			floor := e.Floor
			for _, d := range e.Drops {
				if d.Version.Gen == 0 {
					floor = max(floor, d.Gen)
				}
			}
			floors[e.Name] = max(floors[e.Name], floor)
		}
	}
}
