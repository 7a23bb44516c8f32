package main

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// latency times single-key has on one connection to an owner of a filter
// (served there) and on one to a member that does not hold it (forwarded),
// interleaved, and compares their p99.
func (b *bench) latency(ctx context.Context) error {
	live := b.c.live()
	f := b.filters[0]
	cn, err := b.c.control(ctx, live[0])
	if err != nil {
		return err
	}
	d, err := cn.info(ctx, f)
	if err != nil {
		return err
	}
	own := d.owners
	var other string
	for _, name := range live {
		if !slices.Contains(own, name) {
			other = name
			break
		}
	}
	keys := b.keys[f]
	if other == "" || len(keys) == 0 {
		return fmt.Errorf("no member outside %v, or no key of %s", own, f)
	}
	local, err := dialConn(ctx, b.c.members[own[0]].addr)
	if err != nil {
		return err
	}
	defer local.Close()
	fwd, err := dialConn(ctx, b.c.members[other].addr)
	if err != nil {
		return err
	}
	defer fwd.Close()
	n := b.cfg.latencyN
	var tl, tf []time.Duration
	absent := 0
	one := func(c *conn, i int, into *[]time.Duration) error {
		key := keys[i%len(keys) : i%len(keys)+1]
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		began := time.Now()
		got, err := c.has(actx, f, key)
		if into != nil {
			*into = append(*into, time.Since(began))
		}
		if err == nil && !got[0] {
			absent++
		}
		return err
	}
	for i := range min(1000, n) { // warm up both paths: connections, the forwarder's too
		if err := one(local, i, nil); err != nil {
			return err
		}
		if err := one(fwd, i, nil); err != nil {
			return err
		}
	}
	end := time.Now().Add(b.cfg.latencyFor)
	for i := 0; i < n && time.Now().Before(end); i++ {
		if err := one(local, i, &tl); err != nil {
			return fmt.Errorf("has of %s on %s: %w", f, own[0], err)
		}
		if err := one(fwd, i, &tf); err != nil {
			return fmt.Errorf("has of %s on %s: %w", f, other, err)
		}
	}
	slices.Sort(tl)
	slices.Sort(tf)
	from := fmt.Sprintf("has of 1 key, one TCP connection each, alternating, %s (owns %s) and %s (does not)", own[0], f, other)
	b.report("latency", "has measured on each path", fmt.Sprintf("%d of %d (within %v)", len(tl), n, b.cfg.latencyFor), "", from, true)
	b.report("latency", "local p50 / p99", fmt.Sprintf("%v / %v", pct(tl, 50), pct(tl, 99)), "", from, true)
	b.report("latency", "forwarded p50 / p99", fmt.Sprintf("%v / %v", pct(tf, 50), pct(tf, 99)), "", from, true)
	b.report("latency", "p50 forwarded / p50 local", fmt.Sprintf("%.2f", float64(pct(tf, 50))/float64(max(pct(tl, 50), 1))), "", from, true)
	ratio := float64(pct(tf, 99)) / float64(max(pct(tl, 99), 1))
	b.report("latency", "p99 forwarded / p99 local", fmt.Sprintf("%.2f", ratio), "≤ 2", from, ratio <= 2 && len(tl) > 0)
	b.report("latency", "keys answered absent", fmt.Sprint(absent), "= 0", from, absent == 0)
	return nil
}

// pct returns the p-th percentile of sorted durations.
func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)].Round(time.Microsecond)
}
