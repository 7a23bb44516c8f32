package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// moved compares each filter's owners before and after a change of
// members: the filters that gained an owner, and the bytes those new
// owners had to receive.
func (b *bench) moved(before, after map[string][]string) (changed []string, bytes uint64) {
	for _, f := range b.filters {
		n := 0
		for _, o := range after[f] {
			if !slices.Contains(before[f], o) {
				n++
			}
		}
		if n > 0 {
			changed = append(changed, f)
			bytes += uint64(n) * b.filterSize
		}
	}
	return changed, bytes
}

// settle waits until the filters are where placement puts them and
// nowhere else (the handoff grace over).
func (b *bench) settle(ctx context.Context, round string) (map[string][]string, error) {
	if b.unsettled {
		return nil, errors.New("skipped: an earlier round left filters not held by their owners (see above)")
	}
	wait, cancel := context.WithTimeout(ctx, b.cfg.wait)
	defer cancel()
	owners, took, err := b.waitReady(wait, true, "", time.Now())
	if err != nil {
		b.unsettled = true
		return nil, fmt.Errorf("before the round: %w", err)
	}
	fmt.Printf("placement: %s: the cluster settled (%v)\n", round, took.Round(time.Millisecond))
	return owners, nil
}

var fillCounters = []string{"fill_bytes", "fills", "fills_failed"}

// join starts a seventh member and measures the bytes that move to it.
func (b *bench) join(ctx context.Context) error {
	ownBefore, err := b.settle(ctx, "join")
	if err != nil {
		return err
	}
	wait, cancel := context.WithTimeout(ctx, b.cfg.wait)
	defer cancel()
	live := b.c.live()
	before, err := b.counters(wait, live, fillCounters...)
	if err != nil {
		return err
	}
	began := time.Now()
	m, err := b.c.fresh(b.c.joinLive())
	if err != nil {
		return err
	}
	if err := b.c.dial(wait, m); err != nil {
		return err
	}
	if _, err := b.c.formed(wait, began); err != nil {
		return err
	}
	ownAfter, took, err := b.waitReady(wait, true, m.name, began)
	if err != nil {
		b.unsettled = true
		return err
	}
	b.planned(ctx, "join", ownAfter)
	live = b.c.live()
	after, err := b.counters(wait, live, fillCounters...)
	if err != nil {
		return err
	}
	changed, ownerBytes := b.moved(ownBefore, ownAfter)
	held := uint64(b.cfg.replicas) * uint64(len(b.filters)) * b.filterSize // every copy the cluster holds
	filled := grew(before, after, "fill_bytes")
	n := len(live)
	bound := 1/float64(n) + 0.05
	b.report("join", fmt.Sprintf("%s joined; settled after", m.name), took.Round(time.Millisecond).String(), "",
		"info on each owner, list on each member", true)
	b.report("join", "bytes of the new owners' filters / bytes held",
		fmt.Sprintf("%d / %d = %.3f (%d filters)", ownerBytes, held, float64(ownerBytes)/float64(held), len(changed)),
		fmt.Sprintf("≤ 1/%d + 5%% = %.3f", n, bound), fmt.Sprintf("the owners the members list, of %d and of %d members", n-1, n),
		float64(ownerBytes) <= bound*float64(held))
	b.report("join", "fill_bytes received / bytes held", fmt.Sprintf("%d / %d = %.3f", filled, held, float64(filled)/float64(held)),
		fmt.Sprintf("≤ %.3f", bound), "stats fill_bytes, grown, summed over members", float64(filled) <= bound*float64(held))
	b.report("join", "fills (fills_failed)", fmt.Sprintf("%d (%d)", grew(before, after, "fills"), grew(before, after, "fills_failed")),
		"", "stats, grown, summed over members", true)
	return nil
}

// leave stops a member with SIGTERM and checks that only its filters
// move.
func (b *bench) leave(ctx context.Context) error {
	ownBefore, err := b.settle(ctx, "leave")
	if err != nil {
		return err
	}
	wait, cancel := context.WithTimeout(ctx, b.cfg.wait)
	defer cancel()
	live := b.c.live()
	leaver := b.c.members[live[b.rng.IntN(len(live))]]
	var its []string
	for _, f := range b.filters {
		if slices.Contains(ownBefore[f], leaver.name) {
			its = append(its, f)
		}
	}
	itsBytes := uint64(len(its)) * b.filterSize
	stayed := slices.DeleteFunc(slices.Clone(live), func(s string) bool { return s == leaver.name })
	before, err := b.counters(wait, stayed, fillCounters...)
	if err != nil {
		return err
	}
	began := time.Now()
	stopped, err := b.c.leave(leaver, 30*time.Second)
	if err != nil {
		return err
	}
	if _, err := b.c.formed(wait, began); err != nil {
		return err
	}
	ownAfter, took, err := b.waitReady(wait, true, "", began)
	if err != nil {
		b.unsettled = true
		return err
	}
	b.planned(ctx, "leave", ownAfter)
	after, err := b.counters(wait, stayed, fillCounters...)
	if err != nil {
		return err
	}
	changed, ownerBytes := b.moved(ownBefore, ownAfter)
	filled := grew(before, after, "fill_bytes")
	fills := grew(before, after, "fills")
	b.report("leave", fmt.Sprintf("%s left (SIGTERM); settled after", leaver.name),
		fmt.Sprintf("%v (it stopped in %v)", took.Round(time.Millisecond), stopped.Round(time.Millisecond)), "",
		"info on each owner, list on each member", true)
	b.report("leave", "filters whose owners changed", fmt.Sprintf("%d; %s held %d", len(changed), leaver.name, len(its)),
		fmt.Sprintf("only %s's", leaver.name), "the owners the members list, before and after", slices.Equal(changed, its))
	b.report("leave", "bytes of the new owners' filters", fmt.Sprintf("%d; %s's filters: %d", ownerBytes, leaver.name, itsBytes),
		fmt.Sprintf("= %d", itsBytes), "the owners the members list, before and after", ownerBytes == itsBytes)
	b.report("leave", "fill_bytes received", fmt.Sprintf("%d = %.3f × its filters' bytes", filled, float64(filled)/float64(max(itsBytes, 1))),
		fmt.Sprintf("≤ %d", itsBytes), "stats fill_bytes, grown, summed over members", filled <= itsBytes)
	b.report("leave", "fills (fills_failed)", fmt.Sprintf("%d (%d)", fills, grew(before, after, "fills_failed")),
		fmt.Sprintf("≤ %d", len(its)), "stats, grown, summed over members", fills <= uint64(len(its)))
	return nil
}
