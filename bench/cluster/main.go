// Command cluster measures rmbd's replication on loopback, with real nodes
// in one process (real sockets, real memberlist), for the figures of the
// cluster work:
//
//	go run ./bench/cluster            # all figures
//	go run ./bench/cluster -fig 1     # add → has latency across 3 nodes
//	go run ./bench/cluster -fig 6     # spread: 50,000 keys on 5 of 10 nodes
//
// Figure 2 (rounds in 100 nodes) is a deterministic test:
// go test -run TestEpidemicRounds -v ./gossip.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/node"
)

func main() {
	fig := flag.Int("fig", 0, "figure to measure (1, 3, 4, 5 or 6); 0 = all")
	idle := flag.Duration("idle", 20*time.Second, "figure 3: how long to watch an idle cluster")
	verbose = flag.Bool("v", false, "log the joining node (figure 5)")
	flag.Parse()
	run := func(n int, f func()) {
		if *fig == 0 || *fig == n {
			f()
		}
	}
	run(1, latency)
	run(3, func() { idleBytes(*idle) })
	run(4, deltaRatio)
	run(5, bulkJoin)
	run(6, spread)
}

var verbose *bool

type cluster struct {
	nodes []*node.Node
	stops []func()
}

// start runs a node; join lists gossip addresses.
func start(cfg node.Config, join ...string) (*node.Node, func()) {
	cfg.Listen = "127.0.0.1:0"
	if cfg.Profile != node.ProfileClassic {
		cfg.GossipListen = "127.0.0.1:0"
		cfg.Join = join
	}
	n, err := node.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		if err := n.Run(ctx); err != nil {
			log.Fatal(err)
		}
		close(done)
	}()
	waitFor(10*time.Second, func() bool { return cfg.Profile == node.ProfileClassic || n.GossipAddr() != "" })
	return n, func() { cancel(); <-done }
}

func startCluster(size int, cfg node.Config) *cluster {
	c := &cluster{}
	for i := range size {
		var join []string
		if i > 0 {
			join = []string{c.nodes[0].GossipAddr()}
		}
		n, stop := start(cfg, join...)
		c.nodes = append(c.nodes, n)
		c.stops = append(c.stops, stop)
	}
	waitFor(10*time.Second, func() bool {
		for _, n := range c.nodes {
			if len(n.Peers()) != size-1 {
				return false
			}
		}
		return true
	})
	return c
}

func (c *cluster) stop() {
	for _, s := range c.stops {
		s()
	}
}

func waitFor(d time.Duration, cond func() bool) {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			log.Fatal("timed out")
		}
		time.Sleep(time.Millisecond)
	}
}

// latency: figure 1. Keys are added on node 1 one every 2 ms; a watcher
// notes when each is present on every node.
func latency() {
	cfg := node.DefaultConfig()
	c := startCluster(3, cfg)
	defer c.stop()
	const keys = 1000
	added := make([]time.Time, keys)
	seen := make([]time.Duration, keys)
	var mu sync.Mutex
	next := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for next < keys || func() bool { mu.Lock(); defer mu.Unlock(); return slices.Contains(seen, 0) }() {
			mu.Lock()
			for i := range next {
				if seen[i] != 0 {
					continue
				}
				k := fmt.Appendf(nil, "lat-%d", i)
				if c.nodes[1].Filter().Has(k) && c.nodes[2].Filter().Has(k) {
					seen[i] = time.Since(added[i])
				}
			}
			mu.Unlock()
			time.Sleep(500 * time.Microsecond)
		}
	}()
	for i := range keys {
		mu.Lock()
		added[i] = time.Now()
		c.nodes[0].Filter().Add(fmt.Appendf(nil, "lat-%d", i))
		next = i + 1
		mu.Unlock()
		time.Sleep(2 * time.Millisecond)
	}
	<-done
	sort.Slice(seen, func(i, j int) bool { return seen[i] < seen[j] })
	p50, p99 := seen[keys/2], seen[keys*99/100]
	fmt.Printf("fig 1: 3 nodes, sync interval %v: add on node 1 → has on all nodes over %d keys: p50 %v (%.2f intervals), p99 %v (%.2f intervals)\n",
		cfg.SyncInterval, keys, p50.Round(time.Millisecond), float64(p50)/float64(cfg.SyncInterval),
		p99.Round(time.Millisecond), float64(p99)/float64(cfg.SyncInterval))
}

// idleBytes: figure 3. Sync bytes sent by each node of an idle cluster of
// 3, per minute, next to the classic profile (every row every tick).
func idleBytes(d time.Duration) {
	cfg := node.DefaultConfig()
	cfg.AntiEntropyInterval = 2 * time.Second // anti-entropy runs several times while we watch
	c := startCluster(3, cfg)
	for i := range 1000 {
		c.nodes[i%3].Filter().Add(fmt.Appendf(nil, "idle-%d", i))
	}
	time.Sleep(2 * time.Second) // let the adds settle
	before := make([]node.Stats, 3)
	for i, n := range c.nodes {
		before[i] = n.Stats()
	}
	time.Sleep(d)
	perMin := func(b, a node.Stats) float64 {
		return float64(a.SyncBytesSent-b.SyncBytesSent+rowBytesPulled(b, a)) * float64(time.Minute) / float64(d)
	}
	var worst float64
	for i, n := range c.nodes {
		worst = max(worst, perMin(before[i], n.Stats()))
	}
	filterBytes := c.nodes[0].Filter().SizeBytes()
	c.stop()

	// The classic profile, measured: 3 nodes peered all to all.
	ccfg := node.ClassicConfig()
	var cn []*node.Node
	var stops []func()
	for range 3 {
		n, s := start(ccfg)
		cn = append(cn, n)
		stops = append(stops, s)
	}
	for i, n := range cn {
		for j, m := range cn {
			if i != j {
				n.AddPeer(m.Addr())
			}
		}
	}
	time.Sleep(time.Second)
	cb := cn[0].Stats()
	time.Sleep(d)
	classic := float64(cn[0].Stats().SyncBytesSent-cb.SyncBytesSent) * float64(time.Minute) / float64(d)
	for _, s := range stops {
		s()
	}
	ticks := float64(time.Minute / cfg.SyncInterval)
	fmt.Printf("fig 3: idle cluster of 3 (default profile, %d-byte filter), watched %v: %.0f filter bytes per node per minute\n",
		filterBytes, d, worst)
	fmt.Printf("       classic profile, 5×400-bit filter, measured: %.0f bytes per node per minute\n", classic)
	fmt.Printf("       classic behaviour (every row every tick) for the %d-byte filter: %.0f bytes per node per minute\n",
		filterBytes, float64(filterBytes)*2*ticks)
}

// rowBytesPulled approximates anti-entropy's row bytes from the rows its
// pulls changed (64 bytes each): digests differ only when rows do.
func rowBytesPulled(b, a node.Stats) uint64 {
	return (a.Count(counter.AntiEntropyRows) - b.Count(counter.AntiEntropyRows)) * 64
}

// deltaRatio: figure 4. 10,000 random adds on node 1 of 3, filter sized for
// 10M keys: sync bytes sent ÷ (changed rows × row bytes × peers).
func deltaRatio() {
	cfg := node.DefaultConfig()
	cfg.Capacity = 10_000_000
	c := startCluster(3, cfg)
	defer c.stop()
	f := c.nodes[0].Filter()
	snap := func(f *filter.Filter) []byte { b, _ := f.CopyRows(nil, 0, f.Rows()); return b }
	beforeRows := snap(f)
	before := make([]node.Stats, 3)
	for i, n := range c.nodes {
		before[i] = n.Stats()
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10_000 {
		f.Add(fmt.Appendf(nil, "delta-%d", rng.Uint64()))
	}
	want := snap(f)
	waitFor(30*time.Second, func() bool {
		return bytes.Equal(snap(c.nodes[1].Filter()), want) && bytes.Equal(snap(c.nodes[2].Filter()), want)
	})
	time.Sleep(3 * cfg.SyncInterval) // onward pushes and their acks settle
	changed := 0
	for r := 0; r < len(want); r += 64 {
		if !bytes.Equal(want[r:r+64], beforeRows[r:r+64]) {
			changed++
		}
	}
	ideal := float64(changed * 64 * 2)
	n1 := float64(c.nodes[0].Stats().SyncBytesSent - before[0].SyncBytesSent)
	var all float64
	for i, n := range c.nodes {
		all += float64(n.Stats().SyncBytesSent - before[i].SyncBytesSent)
	}
	s1 := c.nodes[0].Stats()
	fmt.Printf("       node 1: %d frames (%d resent), %d rows\n", s1.SyncSent-before[0].SyncSent, s1.Resent-before[0].Resent, s1.SyncRowsSent-before[0].SyncRowsSent)
	fmt.Printf("fig 4: 10,000 adds on node 1 of 3, %d rows changed: node 1 sent %.0f sync bytes = %.2f × (changed rows × 64 B × 2 peers); whole cluster %.0f = %.2f ×\n",
		changed, n1, n1/ideal, all, all/ideal)
}

// bulkJoin: figure 5. A node joins a cluster whose filter is 100 MB; time
// until its filter equals the others'.
func bulkJoin() {
	cfg := node.DefaultConfig()
	cfg.Capacity = 80_000_000 // ≈ 99 MB of rows at 1%
	cfg.AntiEntropyInterval = time.Hour
	c := startCluster(2, cfg)
	defer c.stop()
	f := c.nodes[0].Filter()
	rows := make([]byte, f.Rows()*64)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i+8 <= len(rows); i += 8 {
		v := rng.Uint64() & rng.Uint64() & rng.Uint64() // about 1 bit in 8 set, like a filled filter
		for j := range 8 {
			rows[i+j] = byte(v >> (8 * j))
		}
	}
	for _, n := range c.nodes {
		if _, err := n.Filter().MergeRows(f.Fingerprint(), 0, rows, nil); err != nil {
			log.Fatal(err)
		}
	}
	began := time.Now()
	if *verbose {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	n3, stop := start(cfg, c.nodes[0].GossipAddr())
	defer stop()
	if *verbose {
		log.Printf("began %v, started after %v", began.Format("15:04:05.000"), time.Since(began))
	}
	// Poll a sample of rows (cheap), and compare everything once it matches.
	full := make([]byte, 0, len(rows))
	sample := func() bool {
		for r := uint64(0); r < n3.Filter().Rows(); r += 997 {
			got, _ := n3.Filter().CopyRows(nil, r, 1)
			if !bytes.Equal(got, rows[r*64:(r+1)*64]) {
				return false
			}
		}
		if *verbose {
			log.Printf("sample matches at %v", time.Now().Format("15:04:05.000"))
		}
		full, _ = n3.Filter().CopyRows(full[:0], 0, n3.Filter().Rows())
		return bytes.Equal(full, rows)
	}
	waitFor(60*time.Second, sample)
	if *verbose {
		log.Printf("equal at %v", time.Now().Format("15:04:05.000"))
	}
	fmt.Printf("fig 5: a node joining a cluster with a %d MB filter equals the others after %v\n",
		len(rows)>>20, time.Since(began).Round(time.Millisecond))
}

// spread: figure 6, the replication scenario. 10 nodes joined on
// loopback, default sizing; 50,000 keys added at once in 5 slices on 5
// different nodes. Measured: the time until every node holds every key,
// the row bytes the whole cluster sent until 15 s after that (next to the
// ideal: every node receiving each non-empty row once), and the whole
// cluster's CPU in the 10 s after that, idle.
func spread() {
	const size, slices, keys = 10, 5, 50_000
	cfg := node.DefaultConfig()
	c := startCluster(size, cfg)
	defer c.stop()
	before := make([]node.Stats, size)
	for i, n := range c.nodes {
		before[i] = n.Stats()
	}
	began := time.Now()
	var wg sync.WaitGroup
	for s := range slices {
		wg.Go(func() {
			f := c.nodes[s].Filter()
			for i := s; i < keys; i += slices {
				f.Add(fmt.Appendf(nil, "spread-%d", i))
			}
		})
	}
	wg.Wait()
	union, _ := c.nodes[0].Filter().CopyRows(nil, 0, c.nodes[0].Filter().Rows())
	for _, n := range c.nodes[1:slices] {
		theirs, _ := n.Filter().CopyRows(nil, 0, n.Filter().Rows())
		for i := range union {
			union[i] |= theirs[i]
		}
	}
	waitFor(60*time.Second, func() bool {
		for _, n := range c.nodes {
			got, _ := n.Filter().CopyRows(nil, 0, n.Filter().Rows())
			if !bytes.Equal(got, union) {
				return false
			}
		}
		return true
	})
	converged := time.Since(began)
	time.Sleep(15 * time.Second)
	var sent uint64
	for i, n := range c.nodes {
		st := n.Stats()
		sent += st.SyncBytesSent - before[i].SyncBytesSent + rowBytesPulled(before[i], st)
	}
	cpu0 := cpuTime()
	time.Sleep(10 * time.Second)
	idle := float64(cpuTime()-cpu0) / float64(10*time.Second)
	nonEmpty := 0
	for r := 0; r < len(union); r += 64 {
		if !bytes.Equal(union[r:r+64], make([]byte, 64)) {
			nonEmpty++
		}
	}
	ideal := float64(size * nonEmpty * 64)
	fmt.Printf("fig 6: %d nodes, %d keys in %d slices on %d nodes, %d-row filter (%d rows non-empty)\n",
		size, keys, slices, slices, c.nodes[0].Filter().Rows(), nonEmpty)
	fmt.Printf("| figure | measured |\n|---|---|\n")
	fmt.Printf("| until every node holds every key | %.1f s |\n", converged.Seconds())
	fmt.Printf("| row bytes the whole cluster sent, until 15 s after | %.1f MB = %.2f × ideal |\n", float64(sent)/1e6, float64(sent)/ideal)
	fmt.Printf("| ideal: every node receives each non-empty row once | %.1f MB |\n", ideal/1e6)
	fmt.Printf("| whole-cluster CPU in the 10 s after that (idle) | %.1f %% of a core |\n", 100*idle)
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		log.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
