// Command durable measures what a data directory costs, against the same
// work without one, in one run (the figures of the durability work):
//
//		make build && go run ./bench/durable            # every figure
//		go run ./bench/durable -fig 1 -rounds 5         # batched adds: memory vs --data-dir
//
//	 1. batched adds over UDP and TCP: a node in memory and one with
//	    --data-dir and --fsync everysec, taken in turns (rmbd-bench);
//	    then --fsync always with 16 clients, with the fsyncs the node made
//	    and the disk's own fsync rate;
//	 2. restart of a node whose filter is 1 GiB: until it answers, against
//	    cat reading the same files (warm cache);
//	 3. a checkpoint of that filter after 1M random adds: bytes written ÷
//	    (changed rows × 64 B).
//
// Loopback only; every load is bounded in time.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/rmbd/rmbd/client"
	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/store"
)

func main() {
	fig := flag.Int("fig", 0, "figure to measure (1, 2 or 3); 0 = all")
	rounds := flag.Int("rounds", 3, "figure 1: runs of each load, taken in turns")
	seconds := flag.Duration("duration", 3*time.Second, "figure 1: length of each run")
	bin := flag.String("bin", "bin", "folder holding rmbd and rmbd-bench")
	dir := flag.String("dir", "", "folder for data directories (default: a temporary one)")
	flag.Parse()
	if *dir == "" {
		d, err := os.MkdirTemp("", "rmbd-durable-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	b := &bench{bin: *bin, dir: *dir, rounds: *rounds, duration: *seconds}
	if *fig == 0 || *fig == 1 {
		b.adds()
	}
	if *fig == 0 || *fig == 2 || *fig == 3 {
		b.big(*fig)
	}
}

type bench struct {
	bin, dir string
	rounds   int
	duration time.Duration
	port     int
}

// node starts rmbd with args on the next port and waits until it answers.
func (b *bench) node(args ...string) (addr string, stop func()) {
	b.port++
	addr = fmt.Sprintf("127.0.0.1:%d", 18900+b.port)
	cmd := exec.Command(filepath.Join(b.bin, "rmbd"), append([]string{"--listen", addr, "--log-level", "warn", "--udp-sockets", "1"}, args...)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	waitReady(addr)
	return addr, func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }
}

func waitReady(addr string) {
	c, err := client.Dial(context.Background(), addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		_, err := c.Ping(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			log.Fatalf("%s did not answer: %v", addr, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// load runs rmbd-bench --op add against addr and returns keys/s.
func (b *bench) load(addr string, offset int, args ...string) float64 {
	all := append([]string{"--addr", addr, "--op", "add", "--duration", b.duration.String(), "--json",
		"--keys", "40000000", "--key-offset", fmt.Sprint(offset)}, args...)
	out, err := exec.Command(filepath.Join(b.bin, "rmbd-bench"), all...).Output()
	if err != nil {
		log.Fatalf("rmbd-bench %v: %v", all, err)
	}
	var r struct {
		KeyPerSec float64 `json:"keys_per_sec"`
		Lost      int64   `json:"lost"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &r); err != nil {
		log.Fatalf("rmbd-bench said %q: %v", out, err)
	}
	return r.KeyPerSec
}

func stat(addr, name string) uint64 {
	c, err := client.Dial(context.Background(), addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	st, err := c.Stats(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range st {
		if s.Name == name {
			return s.Value
		}
	}
	return 0
}

func median(xs []float64) float64 {
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// adds is figure 1.
func (b *bench) adds() {
	const capacity = "200000000" // 240 MB: the runs' keys stay new
	mem, stopMem := b.node("--capacity", capacity)
	defer stopMem()
	dur, stopDur := b.node("--capacity", capacity, "--data-dir", filepath.Join(b.dir, "everysec"))
	defer stopDur()
	udp := []string{"--clients", "16", "--batch", "64"}
	tcp := []string{"--clients", "4", "--tcp", "--batch", "64", "--pipeline", "32"}
	runs := map[string][]float64{}
	offset := 0
	for r := range b.rounds {
		fmt.Fprintf(os.Stderr, "round %d/%d\n", r+1, b.rounds)
		for _, l := range []struct {
			name, addr string
			args       []string
		}{{"udp mem", mem, udp}, {"udp everysec", dur, udp}, {"tcp mem", mem, tcp}, {"tcp everysec", dur, tcp}} {
			offset += 40_000_000
			runs[l.name] = append(runs[l.name], b.load(l.addr, offset, l.args...))
		}
	}
	fmt.Printf("fig 1: batched adds (64 keys a frame), medians of %d × %v, in turns:\n", b.rounds, b.duration)
	for _, t := range []string{"udp", "tcp"} {
		m, d := median(runs[t+" mem"]), median(runs[t+" everysec"])
		fmt.Printf("       %s: in memory %.0f keys/s, --data-dir --fsync everysec %.0f keys/s = %.2f ×\n", t, m, d, d/m)
	}

	always, stopAlways := b.node("--capacity", capacity, "--data-dir", filepath.Join(b.dir, "always"), "--fsync", "always")
	defer stopAlways()
	diskRate := fsyncRate(filepath.Join(b.dir, "fsync-probe"), b.duration)
	for _, batch := range []string{"64", "1"} {
		before := stat(always, "log_fsyncs")
		began := time.Now()
		offset += 40_000_000
		k := b.load(always, offset, "--clients", "16", "--batch", batch)
		secs := time.Since(began).Seconds()
		fsyncs := float64(stat(always, "log_fsyncs")-before) / secs // includes the verification's idle time: a lower bound
		fmt.Printf("       --fsync always, 16 UDP clients, %s key(s) a frame: %.0f keys/s, %.0f fsyncs/s (%.0f keys per fsync); the disk alone: %.0f fsyncs/s\n",
			batch, k, fsyncs, k/max(fsyncs, 1), diskRate)
	}
}

// fsyncRate measures how many small write+fsync pairs the disk under
// path takes per second, one after another.
func fsyncRate(path string, d time.Duration) float64 {
	f, err := os.Create(path)
	if err != nil {
		log.Fatal(err)
	}
	defer os.Remove(path)
	defer f.Close()
	n := 0
	began := time.Now()
	for time.Since(began) < d {
		f.Write([]byte("12345678"))
		f.Sync()
		n++
	}
	return float64(n) / time.Since(began).Seconds()
}

// big is figures 2 and 3, on a data directory holding a 1 GiB filter.
func (b *bench) big(fig int) {
	rows := uint64(1<<30) / 64
	capacity := rows * 50 // about 50 keys a row at 1%
	f, err := filter.New(filter.Config{Layout: filter.Blocked, Capacity: capacity, FPRate: 0.01, MaxBytes: 2 << 30})
	if err != nil {
		log.Fatal(err)
	}
	dir := filepath.Join(b.dir, "big")
	def := store.Definition{Name: "default", FP: f.Fingerprint(), Capacity: capacity, FPRate: 0.01}
	opts := store.DefaultOptions()
	opts.CheckpointInterval = time.Hour
	s, _, err := store.Open(dir, def, f, opts)
	if err != nil {
		log.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range f.Rows() * 3 { // three keys a row: 95% of rows set
		f.AddHash(rng.Uint64())
	}
	full, err := s.Checkpoint()
	if err != nil {
		log.Fatal(err)
	}
	{ // figure 3's adds are figure 2's deltas too
		before := f.Generation()
		f.Advance()
		for range 1_000_000 {
			f.AddHash(rng.Uint64())
		}
		f.Advance()
		changed := uint64(0)
		for r := range f.ChangedRuns(before + 1) {
			changed += r.Count
		}
		delta, err := s.Checkpoint()
		if err != nil {
			log.Fatal(err)
		}
		if fig == 0 || fig == 3 {
			fmt.Printf("fig 3: filter of %d MiB (full checkpoint %d MiB in %v); after 1M random adds, %d rows changed: the checkpoint wrote %d rows, %d bytes in %v = %.3f × (changed rows × 64 B)\n",
				f.SizeBytes()>>20, full.Bytes>>20, full.Took.Round(time.Millisecond), changed, delta.Rows, delta.Bytes,
				delta.Took.Round(time.Millisecond), float64(delta.Bytes)/float64(changed*64))
		}
	}
	crashed := filepath.Join(b.dir, "crashed") // what kill -9 would leave: the image and a delta
	if fig == 0 || fig == 2 {
		if err := exec.Command("cp", "-r", dir, crashed).Run(); err != nil {
			log.Fatal(err)
		}
		os.Remove(filepath.Join(crashed, "LOCK"))
	}
	began := time.Now()
	if err := s.Close(); err != nil {
		log.Fatal(err)
	}
	closed := time.Since(began)
	if fig != 0 && fig != 2 {
		return
	}
	for _, c := range []struct{ name, dir string }{{"after SIGTERM", dir}, {"after kill -9", crashed}} {
		var cats, starts []float64
		var size int64
		for i := range 3 {
			run := filepath.Join(b.dir, fmt.Sprint("run", i)) // a start changes the files: each run starts from a copy
			if err := exec.Command("cp", "-r", c.dir, run).Run(); err != nil {
				log.Fatal(err)
			}
			files, _ := filepath.Glob(filepath.Join(run, "filters", "default", "*"))
			size = 0
			for _, p := range files {
				if st, err := os.Stat(p); err == nil {
					size += st.Size()
				}
			}
			exec.Command("cat", files...).Run() // into the page cache, as the original files are
			began := time.Now()
			cat := exec.Command("cat", files...) // output to /dev/null
			var why bytes.Buffer
			cat.Stderr = &why
			if err := cat.Run(); err != nil {
				log.Fatalf("cat: %v: %s", err, why.String())
			}
			cats = append(cats, time.Since(began).Seconds())
			began = time.Now()
			_, stop := b.node("--capacity", fmt.Sprint(capacity), "--data-dir", run)
			starts = append(starts, time.Since(began).Seconds())
			stop()
			os.RemoveAll(run)
		}
		ct, r := median(cats), median(starts)
		fmt.Printf("fig 2: restart %s, a %d MiB filter (%d MiB of files): cat reads them in %.3fs, rmbd answers %.3fs after it starts = %.2f × cat (medians of 3, warm cache)\n",
			c.name, f.SizeBytes()>>20, size>>20, ct, r, r/ct)
	}
	fmt.Printf("       (the SIGTERM wrote a full checkpoint, as the deltas touched most of the filter: %v)\n", closed.Round(time.Millisecond))
}
