// Command window measures a windowed filter on a real cluster (make
// window): three rmbd processes on loopback, one filter of 100,000 keys
// per 10 s window in 1 s slices at 1 %, keys added through all three at
// a steady rate for 60 s.
//
//	go run ./bench/window -rmbd bin/rmbd
//	go run ./bench/window -rmbd bin/rmbd -for 20s -capacity 20000
//
// Every second it asks every node for a sample of the keys added between
// the window and a second ago (each must answer present), of keys added
// more than the window and two slices ago, and of keys never added
// (each answers present at no more than 1.25 × the rate), and reads each
// node's bytes for the filter (at most 1.2 × 1.3·n·(−log10 p), the
// memory an age-partitioned Bloom filter takes). The run fails (exit 1)
// if one of those does not hold. Everything runs on loopback, bounded in
// time.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/rmbd/rmbd/client"
)

func main() {
	rmbd := flag.String("rmbd", "bin/rmbd", "the rmbd binary to run")
	port := flag.Int("port", 18600, "first of the loopback ports to use (gossip ports follow)")
	dur := flag.Duration("for", 60*time.Second, "how long keys are added")
	capacity := flag.Uint64("capacity", 100_000, "keys per window, added at that steady rate")
	window := flag.Duration("window", 10*time.Second, "the window")
	slices := flag.Int("slices", 10, "slices per window")
	rate := flag.Float64("fp-rate", 0.01, "the filter's false-positive rate")
	flag.Parse()
	bin, err := filepath.Abs(*rmbd)
	if err != nil {
		log.Fatal(err)
	}
	b := &bench{window: *window, slice: *window / time.Duration(*slices), capacity: *capacity, rate: *rate}
	ok := b.run(bin, *port, *dur, *slices)
	if !ok {
		fmt.Println("window: FAILED")
		os.Exit(1)
	}
	fmt.Println("window: passed")
}

// bench is one run.
type bench struct {
	window, slice time.Duration
	capacity      uint64
	rate          float64
	nodes         []*exec.Cmd
	clients       []*client.Client

	mu   sync.Mutex
	keys []added // in the order acknowledged

	missing, old, oldTrue, never, neverTrue int
	maxBytes                                uint64
}

// added is a batch of keys acknowledged at a moment.
type added struct {
	at   time.Time
	keys []string
}

const filterName = "recent"

func (b *bench) run(bin string, port int, dur time.Duration, slices int) bool {
	defer b.stop()
	if err := b.start(bin, port); err != nil {
		log.Print(err)
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), dur+time.Minute)
	defer cancel()
	if _, err := b.clients[0].CreateWindowedFilter(ctx, filterName, b.capacity, b.rate, b.window, slices); err != nil {
		log.Printf("create: %v", err)
		return false
	}
	for _, c := range b.clients { // the catalog reaches every node
		for {
			if _, err := c.DescribeFilter(ctx, filterName); err == nil {
				break
			} else if ctx.Err() != nil {
				log.Printf("the filter never reached %v", err)
				return false
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	fmt.Printf("window: 3 nodes, %d keys per %v window in %d slices at %v, added for %v\n", b.capacity, b.window, slices, b.rate, dur)
	load, stopLoad := context.WithTimeout(ctx, dur)
	defer stopLoad()
	var wg sync.WaitGroup
	wg.Go(func() { b.load(load) })
	began := time.Now()
	for tick := time.NewTicker(time.Second); load.Err() == nil; {
		select {
		case <-tick.C:
			b.check(ctx, time.Since(began) > b.window+2*b.slice+2*time.Second)
		case <-load.Done():
		}
	}
	wg.Wait()
	return b.verdict()
}

// start starts three nodes, joined, and dials each.
func (b *bench) start(bin string, port int) error {
	dir, err := os.MkdirTemp("", "rmbd-window-")
	if err != nil {
		return err
	}
	gossip := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", port+10+i) }
	for i := range 3 {
		addr := fmt.Sprintf("127.0.0.1:%d", port+i)
		cmd := exec.Command(bin, "--listen", addr, "--data-dir", filepath.Join(dir, fmt.Sprint(i)), "--log-level", "warn",
			"--gossip-listen", gossip(i), "--node-name", fmt.Sprint("n", i), "--join", gossip(0), "--join", gossip(1), "--join", gossip(2))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return err
		}
		b.nodes = append(b.nodes, cmd)
		c, err := client.Dial(context.Background(), addr, client.WithRetryInterval(20*time.Millisecond))
		if err != nil {
			return err
		}
		b.clients = append(b.clients, c)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, c := range b.clients {
		for {
			ms, err := c.Members(context.Background())
			if err == nil && len(ms) == 3 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("the three nodes did not form a cluster within 30 s: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

func (b *bench) stop() {
	for _, c := range b.clients {
		c.Close()
	}
	for _, cmd := range b.nodes {
		cmd.Process.Kill()
		cmd.Wait()
	}
}

// load adds keys at the window's steady rate, 100 at a time, through the
// three nodes in turn, until ctx ends.
func (b *bench) load(ctx context.Context) {
	const batch = 100
	every := time.Duration(float64(b.window) * batch / float64(b.capacity))
	next := time.Now()
	for i := 0; ctx.Err() == nil; i++ {
		keys := make([]string, batch)
		for j := range keys {
			keys[j] = fmt.Sprintf("k%d-%d", i, j)
		}
		c := b.clients[i%3].Filter(filterName)
		if err := c.Add(ctx, keys...); err == nil {
			b.mu.Lock()
			b.keys = append(b.keys, added{time.Now(), keys})
			b.mu.Unlock()
		} else if ctx.Err() == nil { // not the add the end of the load cut short
			log.Printf("add: %v", err)
		}
		next = next.Add(every)
		time.Sleep(time.Until(next))
	}
}

// check asks every node for samples of the keys within the window, of
// keys out of it (once full) and of keys never added, and reads its
// bytes.
func (b *bench) check(ctx context.Context, full bool) {
	now := time.Now()
	var within, out []string
	b.mu.Lock()
	for i, a := range b.keys {
		age := now.Sub(a.at)
		switch {
		case age >= time.Second && age <= b.window && i%10 == 0:
			within = append(within, a.keys...)
		case age > b.window+2*b.slice && age <= b.window+2*b.slice+time.Second:
			out = append(out, a.keys...)
		}
	}
	b.mu.Unlock()
	for n, c := range b.clients {
		f := c.Filter(filterName)
		if got, err := f.Has(ctx, within...); err != nil {
			log.Printf("n%d: has: %v", n, err)
		} else {
			for i, yes := range got {
				if !yes {
					b.missing++
					if b.missing <= 10 {
						log.Printf("n%d: %s missing, added within the window", n, within[i])
					}
				}
			}
		}
		if got, err := f.Has(ctx, out...); err == nil {
			b.old += len(got)
			b.oldTrue += count(got)
		}
		never := make([]string, 2000)
		for i := range never {
			never[i] = fmt.Sprintf("never-%d-%d", b.never, i)
		}
		if got, err := f.Has(ctx, never...); err == nil && full {
			b.never += len(got)
			b.neverTrue += count(got)
		}
		if info, err := c.DescribeFilter(ctx, filterName); err == nil {
			b.maxBytes = max(b.maxBytes, info.Bytes)
		}
	}
}

func count(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// verdict prints the figures and says whether they hold.
func (b *bench) verdict() bool {
	bound := 1.2 * 1.3 * float64(b.capacity) * -math.Log10(b.rate)
	oldRate, neverRate := ratio(b.oldTrue, b.old), ratio(b.neverTrue, b.never)
	fmt.Printf("keys acknowledged: %d\n", len(b.keys)*100)
	fmt.Printf("keys added between %v and 1s before, missing on a node: %d\n", b.window, b.missing)
	fmt.Printf("keys added over %v before, present: %.3f%% of %d asked\n", b.window+2*b.slice, 100*oldRate, b.old)
	fmt.Printf("keys never added, present (a full window): %.3f%% of %d asked\n", 100*neverRate, b.never)
	fmt.Printf("most bytes a node's window took: %d (bound 1.2 × 1.3·n·(−log10 p) = %.0f)\n", b.maxBytes, bound)
	return b.missing == 0 && oldRate <= 1.25*b.rate && neverRate <= 1.25*b.rate && float64(b.maxBytes) <= bound && b.never > 0
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
