package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rmbd/rmbd/wire"
)

// Where the filters are is asked of the members, never computed here:
// each member's list says the owners it places each filter on (its
// catalog and the members it sees), and how it holds each.

// view is what one member's list says of the placed filters.
type view map[string]desc

// views lists the filters on every live member.
func (b *bench) views(ctx context.Context) (map[string]view, error) {
	out := map[string]view{}
	for _, name := range b.c.live() {
		ds, err := b.list(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("list on %s: %w", name, err)
		}
		v := view{}
		for _, d := range ds {
			if b.isFilter[d.name] {
				slices.Sort(d.owners)
				v[d.name] = d
			}
		}
		out[name] = v
	}
	return out, nil
}

// agreed returns each filter's owners when every live member places it
// on the same R live members; why says where they do not (yet).
func (b *bench) agreed(vs map[string]view) (owners map[string][]string, why string) {
	live := b.c.live()
	owners = map[string][]string{}
	for _, f := range b.filters {
		var first string
		for _, name := range live {
			d, ok := vs[name][f]
			switch {
			case !ok:
				return nil, fmt.Sprintf("%s does not list %s", name, f)
			case len(d.owners) != b.cfg.replicas:
				return nil, fmt.Sprintf("%s places %s on %v", name, f, d.owners)
			case owners[f] == nil:
				owners[f], first = d.owners, name
			case !slices.Equal(owners[f], d.owners):
				return nil, fmt.Sprintf("%s places %s on %v, %s on %v", first, f, owners[f], name, d.owners)
			}
		}
		for _, o := range owners[f] {
			if !slices.Contains(live, o) {
				return nil, fmt.Sprintf("every member places %s on %v, and %s is not alive", f, owners[f], o)
			}
		}
	}
	return owners, ""
}

// ready reports whether the live members agree on every filter's owners
// and both hold it ready, each asked with info; with tidy, also whether
// no other member holds it any more (the handoff grace over); with
// newcomer, also whether that member, just started, owns a filter (else
// the members may not have placed the filters again yet). It returns the
// owners; why says what is not so yet; err, a request that failed.
func (b *bench) ready(ctx context.Context, tidy bool, newcomer string) (owners map[string][]string, why string, err error) {
	vs, err := b.views(ctx)
	if err != nil {
		return nil, "", err
	}
	if owners, why = b.agreed(vs); owners == nil {
		return nil, why, nil
	}
	if newcomer != "" && loads(owners)[newcomer] == 0 {
		return nil, fmt.Sprintf("the members place no filter on %s", newcomer), nil
	}
	for _, f := range b.filters {
		for _, o := range owners[f] {
			cn, err := b.c.control(ctx, o)
			var d desc
			if err == nil {
				if d, err = cn.info(ctx, f); err != nil {
					b.c.failed(o, err)
				}
			}
			if err != nil {
				return nil, "", fmt.Errorf("info %s on %s: %w", f, o, err)
			}
			if d.here != wire.HeldReady {
				return nil, fmt.Sprintf("%s, an owner of %s, holds it %s", o, f, heldName(d.here)), nil
			}
		}
	}
	if tidy {
		for name, v := range vs {
			for f, d := range v {
				if !slices.Contains(owners[f], name) && d.here != wire.HeldNot {
					return nil, fmt.Sprintf("%s still holds %s (%s), placed on %v", name, f, heldName(d.here), owners[f]), nil
				}
			}
		}
	}
	return owners, "", nil
}

// waitReady polls ready until it holds, and returns the owners and how
// long it took from since.
func (b *bench) waitReady(ctx context.Context, tidy bool, newcomer string, since time.Time) (map[string][]string, time.Duration, error) {
	why := "not asked"
	for {
		owners, now, err := b.ready(ctx, tidy, newcomer)
		switch {
		case owners != nil:
			return owners, time.Since(since), nil
		case err == nil:
			why = now
		case ctx.Err() == nil && !strings.Contains(err.Error(), "i/o timeout"): // not the request the deadline cut short
			why = err.Error()
		}
		select {
		case <-ctx.Done():
			return nil, 0, fmt.Errorf("not every filter held ready by its owners among %v after %v: %s", b.c.live(),
				time.Since(since).Round(time.Millisecond), why)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func heldName(h uint8) string {
	switch h {
	case wire.HeldNot:
		return "not held"
	case wire.HeldReady:
		return "ready"
	case wire.HeldFilling:
		return "filling"
	case wire.HeldLeaving:
		return "leaving"
	}
	return fmt.Sprint("held ", h)
}

// loads returns how many of the filters each member owns.
func loads(owners map[string][]string) map[string]int {
	per := map[string]int{}
	for _, os := range owners {
		for _, o := range os {
			per[o]++
		}
	}
	return per
}

// held sums the bytes of the placed filters each live member holds
// (ready, filling or leaving), from its list, and counts the copies held
// whose bytes are not those the filters were sized to.
func (b *bench) held(ctx context.Context) (bytes map[string]uint64, count map[string]int, odd int, err error) {
	vs, err := b.views(ctx)
	if err != nil {
		return nil, nil, 0, err
	}
	bytes, count = map[string]uint64{}, map[string]int{}
	for name, v := range vs {
		for _, d := range v {
			if d.here != wire.HeldNot {
				bytes[name] += d.bytes
				count[name]++
				if d.bytes != b.filterSize {
					odd++
				}
			}
		}
	}
	return bytes, count, odd, nil
}

// counters reads the named counters of each member given.
func (b *bench) counters(ctx context.Context, members []string, names ...string) (map[string]map[string]uint64, error) {
	out := map[string]map[string]uint64{}
	for _, name := range members {
		cn, err := b.c.control(ctx, name)
		var st map[string]uint64
		if err == nil {
			if st, err = cn.stats(ctx); err != nil {
				b.c.failed(name, err)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("stats of %s: %w", name, err)
		}
		out[name] = map[string]uint64{}
		for _, n := range names {
			out[name][n] = st[n]
		}
	}
	return out, nil
}

// grew sums, over the members of after, how much each counter grew since
// before (a member absent from before started at 0).
func grew(before, after map[string]map[string]uint64, counter string) uint64 {
	var sum uint64
	for m, cs := range after {
		sum += cs[counter] - before[m][counter]
	}
	return sum
}

// list lists the filters the member name knows.
func (b *bench) list(ctx context.Context, name string) ([]desc, error) {
	cn, err := b.c.control(ctx, name)
	if err != nil {
		return nil, err
	}
	ds, err := cn.list(ctx)
	if err != nil {
		b.c.failed(name, err)
	}
	return ds, err
}
