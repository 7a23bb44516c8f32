package sim

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
)

// The checks of a placement history once every fault healed and the
// filters are on their owners (placecheck.go says what each promises).

// checkHealed runs the checks of the healed cluster, the filters placed:
// every owner holds every key (within settleWithin), every member
// answers every key present, the data directories, the false-positive
// rates.
func (h *placeRun) checkHealed() {
	start := h.c.elapsed()
	for h.unsettled() != "" && h.c.elapsed()-start <= settleWithin {
		h.advance()
	}
	h.pr.Settled = h.c.elapsed() - start
	if why := h.unsettled(); why != "" {
		h.r.failf("lost: %v after the filters were placed, %s", settleWithin, why)
	}
	h.checkAnswers()
	h.checkFolders()
	h.checkFPRate()
}

// unsettled returns "" when every owner up holds every key acknowledged
// into its filters, or which do not.
func (h *placeRun) unsettled() string {
	var out []string
	for fi, f := range h.pl.Filters {
		own, _ := h.owners(f)
		for _, o := range own {
			m := h.member(o)
			g := held(m, f.Name)
			if g == nil {
				out = append(out, fmt.Sprintf("n%d lacks %s", m.i, f.Name))
				continue
			}
			lacks, first := 0, (*placeAck)(nil)
			for _, a := range h.acks[fi] {
				if a.departed {
					continue
				}
				for _, k := range a.keys {
					if !g.Has(k) {
						if lacks++; first == nil {
							first = a
						}
					}
				}
			}
			if lacks > 0 {
				out = append(out, fmt.Sprintf("owner n%d lacks %d keys of %s (%s…, added through n%d, sent at %v, acknowledged at %v)",
					m.i, lacks, f.Name, first.keys[0], first.node, first.sent, first.at))
			}
		}
	}
	if len(out) > 5 {
		out = append(out[:5], fmt.Sprintf("and %d more", len(out)-5))
	}
	return strings.Join(out, "; ")
}

// member returns the member up named name.
func (h *placeRun) member(name string) *member {
	for _, m := range h.c.live() {
		if m.n.Name() == name {
			return m
		}
	}
	panic("no member up named " + name)
}

// checkAnswers asks every member up, through the real has handler
// (forwarded or not), for every key acknowledged.
func (h *placeRun) checkAnswers() {
	lost, gone := map[string]bool{}, map[string]bool{}
	departed := map[string]bool{}
	for fi, f := range h.pl.Filters {
		for _, a := range h.acks[fi] {
			if a.departed {
				for _, k := range a.keys {
					departed[f.Name+"\x00"+string(k)] = true
				}
			}
		}
		var keys [][]byte
		for _, a := range h.acks[fi] {
			keys = append(keys, a.keys...)
		}
		for _, m := range h.c.live() {
			var qs []*request
			for start := 0; start < len(keys); start += maxKeysPerAsk {
				q := &request{op: Op{Kind: OpHas, Node: m.i, Filter: f.Name}, keys: keys[start:min(len(keys), start+maxKeysPerAsk)]}
				qs = append(qs, q)
			}
			for len(qs) > 0 {
				batch := qs[:min(len(qs), 16)]
				qs = qs[len(batch):]
				got := map[*request]bool{}
				h.cl.onAnswer = func(q *request) { got[q] = true }
				for _, q := range batch {
					h.pr.Requests++
					if err := h.cl.send(q); err != nil {
						h.r.failf("client: %v", err)
						return
					}
				}
				h.c.settle()
				for _, q := range batch {
					switch {
					case !got[q]:
						h.r.failf("lost: n%d did not answer a has of %d keys of %s once healed", m.i, len(q.keys), f.Name)
					case q.err != nil:
						h.r.failf("lost: n%d answered a has of %d keys of %s with error %d %q once healed", m.i, len(q.keys), f.Name, q.err.Code, q.err.Msg)
					default:
						for i, k := range q.keys {
							switch k := f.Name + "\x00" + string(k); {
							case present(q.bits, i):
							case departed[k]:
								gone[k] = true
							default:
								lost[k] = true
							}
						}
					}
				}
			}
		}
	}
	h.cl.onAnswer = h.answered
	h.cl.forget()
	h.pr.Lost, h.pr.Departed = len(lost), len(gone)
	if len(lost) > 0 {
		some := slices.Sorted(maps.Keys(lost))
		h.r.failf("lost: %d keys acknowledged answer absent through some member once healed and settled (W = %d), e.g. %q",
			len(lost), h.pl.Quorum, strings.ReplaceAll(some[0], "\x00", " "))
	}
}

// checkFolders: a member's data directory holds the folders of the placed
// filters it owns, and no other (the default filter's aside).
func (h *placeRun) checkFolders() {
	for _, m := range h.c.live() {
		own := 0
		for _, f := range h.pl.Filters {
			if o, _ := h.owners(f); slices.Contains(o, m.n.Name()) {
				own++
			}
		}
		ents, err := m.disk.FS().ReadDir(path.Join(dataDir, "filters"))
		if err != nil {
			h.r.failf("memory: n%d: listing its data directory: %v", m.i, err)
			continue
		}
		folders := map[string]bool{}
		for _, e := range ents {
			if name := e.Name(); e.IsDir() && strings.HasPrefix(name, "v-") { // a named version's (a temporary one is ".tmp-…")
				folders[strings.SplitN(name, "@", 2)[0]] = true
			}
		}
		if len(folders) != own {
			h.r.failf("memory: n%d owns %d placed filters, and its data directory holds %d filters' folders", m.i, own, len(folders))
		}
	}
}

// checkFPRate asks each filter, on its first owner, for keys never added.
func (h *placeRun) checkFPRate() {
	for _, f := range h.pl.Filters {
		o, _ := h.owners(f)
		if len(o) == 0 {
			continue
		}
		m := h.member(o[0])
		g := held(m, f.Name)
		if g == nil {
			continue
		}
		// The filter filled to near capacity is asked fpProbes keys; the
		// others, far from full, fewer: a rate far below the target is
		// measured well enough.
		probes := fpProbes / 10
		if f.Name == h.pl.Filters[h.pl.FillFilter].Name {
			probes = fpProbes
		}
		hits := 0
		key := []byte("absent-")
		for i := range probes {
			if g.Has(strconv.AppendInt(key[:7], int64(i), 10)) {
				hits++
			}
		}
		rate, target := float64(hits)/float64(probes), g.Version().Def.FPRate
		if est := g.ReadStats().EstimatedKeys; est >= 0.5*float64(g.Version().Def.Capacity) {
			h.r.Full++
			h.r.FPRatio = max(h.r.FPRatio, rate/target)
		}
		if rate > maxFPRatio*target {
			h.r.failf("fp rate: %s on n%d answers %.4f of absent keys present, over %.2f × its target %.4f (%d keys added)",
				f.Name, m.i, rate, maxFPRatio, target, h.added[h.index(f.Name)])
		}
	}
}
