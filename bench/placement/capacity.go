package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rmbd/rmbd/filter"
)

// sizeFor returns the largest capacity whose blocked filter at rate fp
// takes at most target bytes, and its bytes.
func sizeFor(target uint64, fp float64) (capacity, bytes uint64, err error) {
	size := func(n uint64) uint64 {
		rows, _, err := filter.SizeBlocked(n, fp)
		if err != nil {
			return ^uint64(0)
		}
		return rows * filter.BlockedRowBits / 8
	}
	lo, hi := uint64(1), uint64(1)
	for size(hi) <= target {
		lo, hi = hi, hi*2
	}
	for lo+1 < hi { // size(lo) ≤ target < size(hi)
		mid := lo + (hi-lo)/2
		if size(mid) <= target {
			lo = mid
		} else {
			hi = mid
		}
	}
	if size(lo) > target {
		return 0, 0, fmt.Errorf("no filter at rate %v fits in %d bytes", fp, target)
	}
	return lo, size(lo), nil
}

const mib = 1 << 20

// capacity starts the members, creates the filters through each in turn,
// adds keys through each in turn and asks every key through every member.
func (b *bench) capacity(ctx context.Context) error {
	cfg := b.cfg
	began := time.Now()
	seeds := []string{b.c.gossipAddr(0), b.c.gossipAddr(1), b.c.gossipAddr(2)}
	wait, cancel := context.WithTimeout(ctx, cfg.wait)
	defer cancel()
	for range cfg.members { // one by one: a member's seeds answer before it joins
		m, err := b.c.fresh(seeds)
		if err != nil {
			return err
		}
		if err := b.c.dial(wait, m); err != nil {
			return err
		}
	}
	formed, err := b.c.formed(wait, began)
	if err != nil {
		return err
	}
	b.report("capacity", "members started and formed a cluster", fmt.Sprintf("%d in %v", cfg.members, formed.Round(time.Millisecond)),
		"", "members request to each", true)

	// What --max-memory allows the named filters: what the default filter
	// (of the node's flags, on every member) leaves.
	ds, err := b.list(wait, b.c.live()[0])
	if err != nil {
		return err
	}
	var def uint64
	for _, d := range ds {
		if d.name == "default" {
			def = d.bytes
		}
	}
	allowed := cfg.maxMemory - def
	b.allowed = allowed
	target := uint64(cfg.overcommit * float64(allowed) / float64(cfg.filters))
	capacity, size, err := sizeFor(target, cfg.fpRate)
	if err != nil {
		return err
	}
	b.filterSize = size
	for i := range cfg.filters {
		name := fmt.Sprintf("p%02d", i)
		b.filters = append(b.filters, name)
		b.isFilter[name] = true
	}
	all := uint64(cfg.filters) * size
	fmt.Printf("placement: --max-memory %d B − the default filter's %d B = %d B for named filters on a member\n", cfg.maxMemory, def, allowed)
	fmt.Printf("placement: %d filters of %d keys at %v, NONSCALING, R = %d: %d B each, %d B in all = %.4f × %d B\n",
		cfg.filters, capacity, cfg.fpRate, cfg.replicas, size, all, float64(all)/float64(allowed), allowed)
	b.report("capacity", "filter bytes in all / what --max-memory allows",
		fmt.Sprintf("%d×%d B / (%d − %d) B = %.4f", cfg.filters, size, cfg.maxMemory, def, float64(all)/float64(allowed)),
		fmt.Sprintf("≈ %.1f", cfg.overcommit), "filter.SizeBlocked; list on a member (the default filter's bytes)",
		float64(all) >= 0.999*cfg.overcommit*float64(allowed))

	// Create through each member in turn.
	wait, cancel = context.WithTimeout(ctx, cfg.wait)
	defer cancel()
	live := b.c.live()
	created := 0
	var errs []string
	var made []string
	for i, name := range b.filters {
		via := live[i%len(live)]
		cn, err := b.c.control(wait, via)
		if err == nil {
			if err = cn.create(wait, name, capacity, cfg.fpRate, uint8(cfg.replicas)); err != nil {
				b.c.failed(via, err)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s through %s: %v", name, via, err))
			delete(b.isFilter, name)
			continue
		}
		created++
		made = append(made, name)
	}
	// A name refused is not asked again: an add to it would make (as the
	// nodes let loopback) a filter of another kind, on every member.
	b.filters = made
	b.report("capacity", "filters created (through each member in turn)", fmt.Sprintf("%d of %d", created, cfg.filters),
		fmt.Sprint("= ", cfg.filters), "filter request create, Replicas 2", created == cfg.filters)
	for _, e := range errs[:min(len(errs), 5)] {
		fmt.Printf("    create %s\n", e)
	}
	lastCreate := time.Now()
	wait, cancel = context.WithTimeout(ctx, cfg.wait)
	defer cancel()
	if took, err := b.catalogued(wait, lastCreate); err != nil {
		b.report("capacity", "catalog on every member", err.Error(), "", "list on each member", true)
	} else {
		b.report("capacity", "catalog on every member", fmt.Sprintf("%v after the last create", took.Round(time.Millisecond)), "",
			"list on each member, every 50 ms", true)
	}
	settle, cancelSettle := context.WithTimeout(ctx, cfg.wait)
	owners, took, err := b.waitReady(settle, false, "", lastCreate)
	cancelSettle()
	if err != nil {
		b.unsettled = true
		b.report("capacity", "every filter held ready by its 2 owners", err.Error(), "holds", "info on each owner", false)
		b.planned(ctx, "capacity", nil)
	} else {
		b.planned(ctx, "capacity", owners)
		b.report("capacity", "every filter held ready by its 2 owners", fmt.Sprintf("%v after the last create", took.Round(time.Millisecond)), "holds",
			"info (placement) on each owner", true)
	}
	if err := b.fill(ctx, owners); err != nil {
		return err
	}
	bytes, count, odd, err := b.held(ctx)
	if err != nil {
		return err
	}
	b.report("capacity", "copies held not of the bytes sized", fmt.Sprint(odd), "= 0", "list (placement) on each member: Bytes", odd == 0)
	for _, name := range b.c.live() {
		b.report("capacity", fmt.Sprintf("bytes %s holds (%d filters)", name, count[name]),
			fmt.Sprintf("%d = %.3f × --max-memory", bytes[name], float64(bytes[name])/float64(cfg.maxMemory)),
			"≤ --max-memory", "list (placement): Bytes where Here ≠ not held", bytes[name] <= cfg.maxMemory)
	}
	return nil
}

// catalogued waits until every member lists every filter, and returns
// how long from since.
func (b *bench) catalogued(ctx context.Context, since time.Time) (time.Duration, error) {
	for {
		short := ""
		for _, name := range b.c.live() {
			ds, err := b.list(ctx, name)
			if err != nil {
				short = err.Error()
				break
			}
			n := 0
			for _, d := range ds {
				if b.isFilter[d.name] {
					n++
				}
			}
			if n < len(b.filters) {
				short = fmt.Sprintf("%s lists %d of %d", name, n, len(b.filters))
				break
			}
		}
		if short == "" {
			return time.Since(since), nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("not on every member after %v: %s", time.Since(since).Round(time.Millisecond), short)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// planned prints how many filters the members place on each, and the
// share of what --max-memory allows that takes; with owners nil, as the
// first live member places them (the members do not agree yet).
func (b *bench) planned(ctx context.Context, round string, owners map[string][]string) {
	how := "as the members agree"
	if owners == nil {
		name := b.c.live()[0]
		ds, err := b.list(ctx, name)
		if err != nil {
			return
		}
		owners, how = map[string][]string{}, "as "+name+" places them"
		for _, d := range ds {
			if b.isFilter[d.name] {
				owners[d.name] = d.owners
			}
		}
	}
	per := loads(owners)
	var parts []string
	for _, name := range b.c.live() {
		parts = append(parts, fmt.Sprintf("%s %d (%.2f×)", name, per[name], float64(uint64(per[name])*b.filterSize)/float64(b.allowed)))
	}
	fmt.Printf("placement: %s: filters on each member, %s (× what --max-memory allows): %s\n", round, how, strings.Join(parts, ", "))
}

// addBatch is the keys added in one request.
const addBatch = 500

// fill adds every filter's keys, a batch through each member in turn,
// then asks every key through every member.
func (b *bench) fill(ctx context.Context, own map[string][]string) error {
	cfg := b.cfg
	live := b.c.live()
	type job struct {
		filter string
		keys   []string
	}
	jobs := map[string][]job{}
	forwarded, total := 0, 0
	for fi, f := range b.filters {
		for j := 0; j*addBatch < cfg.keys; j++ {
			var keys []string
			for k := j * addBatch; k < min((j+1)*addBatch, cfg.keys); k++ {
				keys = append(keys, fmt.Sprintf("%s-%d", f, k))
			}
			via := live[(fi+j)%len(live)]
			jobs[via] = append(jobs[via], job{f, keys})
			total++
			if !slices.Contains(own[f], via) {
				forwarded++
			}
		}
	}
	before, err := b.counters(ctx, live, "forwards", "forwards_failed")
	if err != nil {
		return err
	}
	began := time.Now()
	var mu sync.Mutex
	var refused []string
	added := 0
	var wg sync.WaitGroup
	for _, via := range live {
		wg.Go(func() {
			c, err := dialConn(ctx, b.c.members[via].addr)
			if err != nil {
				mu.Lock()
				refused = append(refused, err.Error())
				mu.Unlock()
				return
			}
			defer func() { c.Close() }()
			for _, j := range jobs[via] {
				actx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err := c.add(actx, j.filter, j.keys)
				cancel()
				mu.Lock()
				if err != nil {
					refused = append(refused, fmt.Sprintf("%s through %s: %v", j.filter, via, err))
				} else {
					b.keys[j.filter] = append(b.keys[j.filter], j.keys...)
					added += len(j.keys)
				}
				mu.Unlock()
				if errors.Is(err, errBroken) {
					c.Close()
					if c, err = dialConn(ctx, b.c.members[via].addr); err != nil {
						return
					}
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(began)
	after, err := b.counters(ctx, live, "forwards", "forwards_failed")
	if err != nil {
		return err
	}
	b.report("capacity", "keys added (acknowledged, quorum 2)", fmt.Sprintf("%d of %d in %v", added, cfg.filters*cfg.keys, took.Round(time.Millisecond)),
		fmt.Sprint("= ", cfg.filters*cfg.keys), "add batches (FlagAck) of 500 through each member in turn", added == cfg.filters*cfg.keys)
	sort.Strings(refused)
	for _, r := range refused[:min(len(refused), 5)] {
		fmt.Printf("    add refused: %s\n", r)
	}
	if own != nil {
		b.report("capacity", "add batches sent through a non-owner", fmt.Sprintf("%d of %d", forwarded, total), "", "the owners the members list", true)
	}
	b.report("capacity", "forwards (forwards_failed)", fmt.Sprintf("%d (%d)", grew(before, after, "forwards"), grew(before, after, "forwards_failed")),
		"", "stats, summed over members", true)

	missing, asked, err := b.askAll(ctx, live, b.keys)
	if err != nil {
		return err
	}
	b.report("capacity", "keys missing, asked through every member", fmt.Sprintf("%d of %d asked", missing, asked), "= 0",
		"has batches of 1000 to each member", missing == 0 && asked > 0)
	return nil
}

// askAll asks every key of keys through each member given, one
// connection each, and returns how many answered absent (or could not
// be asked) and how many were asked.
func (b *bench) askAll(ctx context.Context, via []string, keys map[string][]string) (missing, asked int, err error) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []error
	for _, name := range via {
		wg.Go(func() {
			m, a, err := b.ask(ctx, b.c.members[name].addr, keys)
			mu.Lock()
			defer mu.Unlock()
			missing, asked = missing+m, asked+a
			if err != nil {
				errs = append(errs, fmt.Errorf("through %s: %w", name, err))
			}
		})
	}
	wg.Wait()
	return missing, asked, errors.Join(errs...)
}

// hasBatch is the keys asked in one request.
const hasBatch = 1000

// ask asks every key through the member at addr. A batch that fails is
// asked again (a second later, five times at most) before its keys count
// as missing.
func (b *bench) ask(ctx context.Context, addr string, keys map[string][]string) (missing, asked int, err error) {
	c, err := dialConn(ctx, addr)
	if err != nil {
		return 0, 0, err
	}
	defer func() { c.Close() }()
	shown := 0
	for _, f := range b.filters {
		ks := keys[f]
		for i := 0; i < len(ks); i += hasBatch {
			batch := ks[i:min(i+hasBatch, len(ks))]
			asked += len(batch)
			var got []bool
			for try := 0; ; try++ {
				actx, cancel := context.WithTimeout(ctx, 10*time.Second)
				got, err = c.has(actx, f, batch)
				cancel()
				if err == nil || try == 4 || ctx.Err() != nil {
					break
				}
				if errors.Is(err, errBroken) {
					c.Close()
					if c, err = dialConn(ctx, addr); err != nil {
						return missing, asked, err
					}
				}
				time.Sleep(time.Second)
			}
			if err != nil {
				fmt.Printf("    has %s through %s: %v\n", f, addr, err)
				missing += len(batch)
				continue
			}
			for j, yes := range got {
				if !yes {
					if missing++; shown < 3 {
						shown++
						fmt.Printf("    %s of %s missing through %s\n", batch[j], f, addr)
					}
				}
			}
		}
	}
	return missing, asked, nil
}
