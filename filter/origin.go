package filter

import "slices"

// Origins: the rows this node changed itself, apart from every change.
//
// Members of a cluster push each other only what they originate — their
// own adds, and rows learnt from outside the cluster (static and classic
// peers) — since every member hears a member's rows from that member
// itself: re-sending rows merged from one member to the others would send
// each row once per member that learnt it. So the filter keeps, beside
// every change (changes.go), which rows changed at their origin here.
//
// Add marks its row originated; MergeRows does not (its caller calls
// Originate for rows from outside the cluster). Advance, stamping a row so
// marked, puts it in a short log of recent generations, each the sorted
// rows it originated: a push round to a member lists the rows of the
// generations since it last caught up. The log is bounded
// (originLogRows); a member further behind than the log reaches gets
// every change instead, from ChangedRuns, which is never too little.

// originLogRows bounds the rows the origin log holds, all generations
// together: past it the oldest generations are forgotten. A round to a
// member usually needs the last generation or two; the bound is what a
// burst of adds may cost (4 bytes a row).
const originLogRows = 1 << 18

// originGen is the rows one generation originated, sorted.
type originGen struct {
	gen  uint64
	rows []uint32
}

// originLog is the recent generations' origins, oldest first. floor is the
// newest generation forgotten: the log knows every origin after it. It is
// guarded by the filter's mu.
type originLog struct {
	gens  []originGen
	rows  int
	floor uint64
	last  uint64 // the last generation that originated a row
}

// Originate marks rows (as MergeRows reports them changed) as originated
// here: rows this node learnt from outside its cluster, which its members
// must hear from it. Rows out of range are ignored.
func (f *Filter) Originate(rows []uint64) {
	for _, r := range rows {
		if r < f.rows {
			f.markChanged(r, true)
		}
	}
}

// add logs the rows generation gen originated (sorted), forgetting the
// oldest generations past originLogRows — all of them, gen's too, when
// gen alone is past it.
func (l *originLog) add(gen uint64, rows []uint32) {
	if len(rows) == 0 {
		return
	}
	l.last = gen
	if len(rows) > originLogRows {
		*l = originLog{floor: gen, last: gen}
		return
	}
	l.gens = append(l.gens, originGen{gen: gen, rows: rows})
	l.rows += len(rows)
	for l.rows > originLogRows {
		l.floor = l.gens[0].gen
		l.rows -= len(l.gens[0].rows)
		l.gens[0] = originGen{}
		l.gens = l.gens[1:]
	}
}

// LastOriginated returns the last generation that originated a row here:
// a member caught up to it has every row this node must push it.
func (f *Filter) LastOriginated() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.originLog.last
}

// OriginatedSince appends to dst, sorted and once each, the rows
// originated here in generations after since, and reports whether the log
// reaches back that far; if not, dst is returned as it was and the caller
// falls back on ChangedRuns(since). (Rows loaded from disk were
// originated by no generation: ChangedRuns(0) finds them.)
func (f *Filter) OriginatedSince(since uint64, dst []uint32) ([]uint32, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := &f.originLog
	if since < l.floor {
		return dst, false
	}
	start := len(dst)
	parts := 0
	for _, g := range l.gens {
		if g.gen > since {
			dst = append(dst, g.rows...)
			parts++
		}
	}
	if parts > 1 {
		out := dst[start:]
		slices.Sort(out)
		dst = dst[:start+len(slices.Compact(out))]
	}
	return dst, true
}
