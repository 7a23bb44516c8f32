// Command crash kills rmbd nodes with SIGKILL at random moments under a
// steady load of acknowledged adds, restarts them on the same data
// directory and checks what survived (make crash):
//
//	go run ./bench/crash -rmbd bin/rmbd               # both fsync policies, then a cluster
//	go run ./bench/crash -rmbd bin/rmbd -kills 20 -cluster-kills 3
//
// With --fsync always every acknowledged add must be back after each
// restart: one missing fails the run. With everysec the run reports how
// many are missing and how long before the kill they were acknowledged.
// In the cluster round, three nodes are killed together and restarted,
// and every key acknowledged by any of them must reach all three.
// Everything runs on loopback, bounded in time.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/rmbd/rmbd/client"
)

func main() {
	rmbd := flag.String("rmbd", "bin/rmbd", "the rmbd binary to run")
	kills := flag.Int("kills", 200, "kills per fsync policy")
	clusterKills := flag.Int("cluster-kills", 10, "times the whole three-node cluster is killed together")
	port := flag.Int("port", 18700, "first of the loopback ports to use (data and gossip ports follow)")
	workers := flag.Int("workers", 8, "concurrent clients adding keys")
	maxLoad := flag.Duration("max-load", 300*time.Millisecond, "longest load before a kill (each kill waits a random part of it)")
	flag.Parse()
	bin, err := filepath.Abs(*rmbd)
	if err != nil {
		log.Fatal(err)
	}
	r := &runner{bin: bin, port: *port, workers: *workers, maxLoad: *maxLoad, rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))}
	failed := false
	for _, policy := range []string{"always", "everysec"} {
		if *kills > 0 && !r.single(policy, *kills) {
			failed = true
		}
	}
	if *clusterKills > 0 && !r.cluster(*clusterKills) {
		failed = true
	}
	if failed {
		fmt.Println("crash: FAILED")
		os.Exit(1)
	}
	fmt.Println("crash: passed")
}

type runner struct {
	bin      string
	port     int
	workers  int
	maxLoad  time.Duration
	rng      *rand.Rand
	lastKill time.Time // when the last node was killed
}

// proc is one rmbd process.
type proc struct {
	cmd  *exec.Cmd
	addr string
}

func (r *runner) start(dir, fsync string, i int, extra ...string) *proc {
	addr := fmt.Sprintf("127.0.0.1:%d", r.port+i)
	args := append([]string{"--listen", addr, "--data-dir", dir, "--fsync", fsync, "--log-level", "warn"}, extra...)
	cmd := exec.Command(r.bin, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	p := &proc{cmd: cmd, addr: addr}
	c := dial(addr)
	defer c.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, err := c.Ping(ctx)
		cancel()
		if err == nil {
			return p
		}
		if time.Now().After(deadline) {
			log.Fatalf("rmbd on %s did not answer within 30s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *proc) kill() {
	p.cmd.Process.Kill() // SIGKILL: no shutdown, no last checkpoint
	p.cmd.Wait()
}

func dial(addr string) *client.Client {
	c, err := client.Dial(context.Background(), addr, client.WithRetryInterval(20*time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
	return c
}

// acked is the keys acknowledged so far, with when.
type acked struct {
	mu   sync.Mutex
	keys []string
	at   []time.Time
}

func (a *acked) add(keys []string) {
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, k := range keys {
		a.keys = append(a.keys, k)
		a.at = append(a.at, now)
	}
}

// load adds fresh keys from r.workers clients to the nodes at addrs until
// ctx ends, recording each batch once acknowledged.
func (r *runner) load(ctx context.Context, addrs []string, round int, a *acked) {
	var wg sync.WaitGroup
	for w := range r.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			addr := addrs[w%len(addrs)]
			c := dial(addr)
			defer c.Close()
			for i := 0; ctx.Err() == nil; i++ {
				keys := make([]string, 20)
				for j := range keys {
					keys[j] = fmt.Sprintf("r%d-w%d-%d-%d", round, w, i, j)
				}
				if err := c.Add(ctx, keys...); err == nil {
					a.add(keys)
				}
			}
		}()
	}
	wg.Wait()
}

// sampleOld is how many keys from before the last round a restart checks
// besides every key of the last round; the last restart checks them all.
const sampleOld = 50_000

// missing returns the acknowledged keys the node at addr lacks, and when
// each was acknowledged: every key from index from on, and a sample of
// sample keys before it (all of them if sample is negative).
func missing(addr string, a *acked, from, sample int, rng *rand.Rand) ([]string, []time.Time, error) {
	c := dial(addr)
	defer c.Close()
	a.mu.Lock()
	var keys []string
	var at []time.Time
	if sample < 0 || from <= sample {
		keys, at = append(keys, a.keys...), append(at, a.at...)
	} else {
		for range sample {
			i := rng.IntN(from)
			keys, at = append(keys, a.keys[i]), append(at, a.at[i])
		}
		keys, at = append(keys, a.keys[from:]...), append(at, a.at[from:]...)
	}
	a.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got, err := c.Has(ctx, keys...)
	if err != nil {
		return nil, nil, err
	}
	var miss []string
	var when []time.Time
	for i, ok := range got {
		if !ok {
			miss, when = append(miss, keys[i]), append(when, at[i])
		}
	}
	return miss, when, nil
}

// single kills one node kills times under load with the given fsync
// policy; it reports whether the policy held.
func (r *runner) single(policy string, kills int) bool {
	dir, err := os.MkdirTemp("", "rmbd-crash-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	began := time.Now()
	var a acked
	lost, worstAge := 0, time.Duration(0)
	checked := 0 // keys acknowledged before the last round
	for i := range kills {
		p := r.start(dir, policy, 0)
		miss, when, err := missing(p.addr, &a, checked, sampleOld, r.rng)
		if err != nil {
			log.Fatalf("checking after restart %d: %v", i, err)
		}
		for j := range miss {
			worstAge = max(worstAge, r.lastKill.Sub(when[j]))
		}
		lost += len(miss)
		if len(miss) > 0 {
			a.forget(miss) // counted once
		}
		checked = a.count()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { r.load(ctx, []string{p.addr}, i, &a); close(done) }()
		time.Sleep(time.Duration(r.rng.Int64N(int64(r.maxLoad))) + 10*time.Millisecond)
		p.kill()
		r.lastKill = time.Now()
		cancel()
		<-done
	}
	p := r.start(dir, policy, 0)
	miss, when, err := missing(p.addr, &a, 0, -1, r.rng) // every key, at the end
	if err != nil {
		log.Fatal(err)
	}
	for j := range miss {
		worstAge = max(worstAge, r.lastKill.Sub(when[j]))
	}
	lost += len(miss)
	p.kill()
	fmt.Printf("fsync %-8s %d kill -9s in %v: %d keys acknowledged, %d missing after restart",
		policy, kills, time.Since(began).Round(time.Second), a.count()+lost, lost)
	if lost > 0 {
		fmt.Printf(" (acknowledged at most %v before a kill)", worstAge.Round(time.Millisecond))
	}
	fmt.Println()
	return policy != "always" || lost == 0
}

func (a *acked) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.keys)
}

func (a *acked) forget(keys []string) {
	drop := map[string]bool{}
	for _, k := range keys {
		drop[k] = true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	keep, at := a.keys[:0], a.at[:0]
	for i, k := range a.keys {
		if !drop[k] {
			keep, at = append(keep, k), append(at, a.at[i])
		}
	}
	a.keys, a.at = keep, at
}

// cluster kills a three-node cluster (fsync always) together, kills
// times, and checks that every key any node acknowledged reaches all three
// after the restart.
func (r *runner) cluster(kills int) bool {
	var dirs []string
	for range 3 {
		d, err := os.MkdirTemp("", "rmbd-crash-cluster-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(d)
		dirs = append(dirs, d)
	}
	gossip := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", r.port+10+i) }
	startAll := func() []*proc {
		var ps []*proc
		for i, d := range dirs {
			ps = append(ps, r.start(d, "always", 1+i, "--gossip-listen", gossip(i), "--node-name", fmt.Sprint("n", i),
				"--join", gossip(0), "--join", gossip(1), "--join", gossip(2), "--anti-entropy-interval", "1s"))
		}
		return ps
	}
	began := time.Now()
	var a acked
	ok := true
	for i := range kills {
		ps := startAll()
		var addrs []string
		for _, p := range ps {
			addrs = append(addrs, p.addr)
		}
		if !r.converge(addrs, &a, i) {
			ok = false
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { r.load(ctx, addrs, 1000+i, &a); close(done) }()
		time.Sleep(time.Duration(r.rng.Int64N(int64(r.maxLoad))) + 10*time.Millisecond)
		for _, p := range ps {
			go p.kill()
		}
		for _, p := range ps {
			p.cmd.Wait()
		}
		cancel()
		<-done
	}
	ps := startAll()
	var addrs []string
	for _, p := range ps {
		addrs = append(addrs, p.addr)
	}
	if !r.converge(addrs, &a, kills) {
		ok = false
	}
	for _, p := range ps {
		p.kill()
	}
	fmt.Printf("cluster of 3, fsync always, killed together %d times in %v: %d keys acknowledged, on all three after each restart: %v\n",
		kills, time.Since(began).Round(time.Second), len(a.keys), ok)
	return ok
}

// converge waits (30 s at most) until every acknowledged key is on every
// node, and reports whether it happened.
func (r *runner) converge(addrs []string, a *acked, round int) bool {
	deadline := time.Now().Add(30 * time.Second)
	for {
		worst := 0
		var err error
		for _, addr := range addrs {
			var miss []string
			miss, _, err = missing(addr, a, 0, -1, r.rng)
			worst = max(worst, len(miss))
		}
		if err == nil && worst == 0 {
			return true
		}
		if time.Now().After(deadline) {
			fmt.Printf("cluster round %d: %d acknowledged keys missing on a node after 30s (%v)\n", round, worst, errors.Join(err))
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
}
