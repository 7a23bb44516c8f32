package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// crash kills one member (-9) while a client per member adds, checks
// that no acknowledged add is lost, starts a fresh member in its place
// (or restarts it, -replace restart) and measures how long until every
// filter is held ready by two live owners.
func (b *bench) crash(ctx context.Context) error {
	wait, cancel := context.WithTimeout(ctx, 2*b.cfg.wait)
	defer cancel()
	live := b.c.live()
	victim := b.c.members[live[b.rng.IntN(len(live))]]
	fmt.Printf("placement: crash: %s is killed -9 while %d clients add\n", victim.name, len(live))

	load, stopLoad := context.WithCancel(wait)
	defer stopLoad()
	var mu sync.Mutex
	acked := map[string][]string{}
	ackedN, refusedN, afterKill, refusedLate := 0, 0, 0, 0
	var killedAt, seenAt time.Time
	var wg sync.WaitGroup
	for w := range live {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(b.seed, uint64(w)))
			via := w
			c, err := dialConn(load, b.c.members[live[via]].addr)
			for i := 0; load.Err() == nil; i++ {
				if c == nil { // this member is gone: a client goes to the next
					if via = (via + 1) % len(live); live[via] == victim.name {
						via = (via + 1) % len(live)
					}
					if c, err = dialConn(load, b.c.members[live[via]].addr); err != nil {
						c = nil
						time.Sleep(10 * time.Millisecond)
						continue
					}
				}
				f := b.filters[rng.IntN(len(b.filters))]
				keys := make([]string, 20)
				for j := range keys {
					keys[j] = fmt.Sprintf("c%d-%d-%d", w, i, j)
				}
				actx, cancel := context.WithTimeout(load, 5*time.Second)
				err = c.add(actx, f, keys)
				cancel()
				mu.Lock()
				if err == nil {
					acked[f] = append(acked[f], keys...)
					ackedN += len(keys)
					if !killedAt.IsZero() {
						afterKill += len(keys)
					}
				} else if load.Err() == nil {
					refusedN += len(keys)
					if !seenAt.IsZero() {
						refusedLate += len(keys)
					}
				}
				mu.Unlock()
				if errors.Is(err, errBroken) {
					c.Close()
					c = nil
				}
			}
			if c != nil {
				c.Close()
			}
		})
	}
	time.Sleep(300*time.Millisecond + time.Duration(b.rng.Int64N(int64(time.Second))))
	mu.Lock()
	killedAt = time.Now()
	mu.Unlock()
	b.c.kill(victim)
	detected, err := b.c.formed(wait, killedAt)
	mu.Lock()
	seenAt = time.Now()
	mu.Unlock()
	time.Sleep(2 * time.Second) // adds go on a while once the others know
	stopLoad()
	wg.Wait()
	if err != nil {
		return err
	}
	survivors := b.c.live()
	b.report("crash", "member killed -9 under load", fmt.Sprintf("%s (seed %d); the others saw it dead after %v", victim.name, b.seed,
		detected.Round(time.Millisecond)), "", "members request to each", true)
	b.report("crash", "keys acknowledged (of them after the kill)", fmt.Sprintf("%d (%d)", ackedN, afterKill), "",
		fmt.Sprintf("%d clients, add batches of 20 (FlagAck), --write-quorum 2", len(live)), true)
	b.report("crash", "keys refused (of them once it was seen dead)", fmt.Sprintf("%d (%d)", refusedN, refusedLate), "",
		fmt.Sprintf("%d clients, add batches of 20 (FlagAck), --write-quorum 2", len(live)), true)
	missing, asked, err := b.askAll(wait, survivors, acked)
	if err != nil {
		return err
	}
	b.report("crash", "acknowledged adds lost, asked through each live", fmt.Sprintf("%d of %d asked", missing, asked), "= 0",
		"has batches to every member alive", missing == 0 && asked > 0)
	for f, ks := range acked {
		b.keys[f] = append(b.keys[f], ks...)
	}

	// A fresh member in the dead one's place, or the dead one restarted.
	began := time.Now()
	var m *member
	if b.cfg.restart {
		m, err = b.c.restart(victim, b.c.joinLive())
	} else {
		m, err = b.c.fresh(b.c.joinLive())
	}
	if err != nil {
		return err
	}
	if err := b.c.dial(wait, m); err != nil {
		return err
	}
	joined, err := b.c.formed(wait, began)
	if err != nil {
		return err
	}
	settle, cancelSettle := context.WithTimeout(ctx, b.cfg.wait)
	owners, took, err := b.waitReady(settle, false, m.name, began)
	cancelSettle()
	b.planned(ctx, "crash", owners)
	bound := 2 * b.cfg.antiEntropy
	from := fmt.Sprintf("info (placement) on each owner, every 50 ms; --anti-entropy-interval %v", b.cfg.antiEntropy)
	if err != nil {
		b.unsettled = true
		b.report("crash", "every filter on 2 live owners, ready", fmt.Sprintf("%s %s; %v", m.name, b.replaced(), err), fmt.Sprint("≤ ", bound), from, false)
	} else {
		b.report("crash", "every filter on 2 live owners, ready", fmt.Sprintf("%v after %s %s (joined after %v)",
			took.Round(time.Millisecond), m.name, b.replaced(), joined.Round(time.Millisecond)), fmt.Sprint("≤ ", bound), from, took <= bound)
	}
	live = b.c.live()
	missing, asked, err = b.askAll(ctx, live, b.keys)
	if err != nil {
		return err
	}
	b.report("crash", "keys missing afterwards, asked through each", fmt.Sprintf("%d of %d asked", missing, asked), "= 0",
		fmt.Sprintf("has batches to each of %v", live), missing == 0 && asked > 0)
	return nil
}

// replaced says how the killed member was replaced.
func (b *bench) replaced() string {
	if b.cfg.restart {
		return "restarted on its data directory"
	}
	return "started (fresh, in its place)"
}
