// Command diskfull fills the disk under a node's data directory while
// clients add keys with acknowledgement (--fsync always), frees the
// space, then kills the node with SIGKILL and restarts it (make diskfull):
//
//	sudo go run ./bench/diskfull -rmbd bin/rmbd      # mounts a 20 MiB tmpfs itself
//	go run ./bench/diskfull -rmbd bin/rmbd -dir /mnt/small
//
// It reports how acknowledged adds were refused while the disk was full
// (error frames with their code, or broken connections), whether /readyz
// said so, how long after the space came back adds were acknowledged
// again, and how many acknowledged keys the restarted node lacks: it
// fails unless that is 0. -dir must be on a small file system of its own
// (the tool fills it); without -dir it mounts a tmpfs, which needs root
// (or a user and mount namespace: unshare -Urm). Loopback only; every
// phase is bounded in time.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/rmbd/rmbd/client"
	"github.com/rmbd/rmbd/wire"
)

func main() {
	rmbd := flag.String("rmbd", "bin/rmbd", "the rmbd binary to run")
	dir := flag.String("dir", "", "an empty directory on a small file system of its own (empty: mount a tmpfs)")
	size := flag.String("size", "20m", "size of the tmpfs mounted without -dir")
	port := flag.Int("port", 18900, "loopback port of the node (the metrics port follows)")
	workers := flag.Int("workers", 4, "concurrent clients adding keys")
	full := flag.Duration("full", 3*time.Second, "how long the disk stays full")
	flag.Parse()
	bin, err := filepath.Abs(*rmbd)
	if err != nil {
		log.Fatal(err)
	}
	d := *dir
	if d == "" {
		d, err = mountTmpfs(*size)
		if err != nil {
			log.Fatal(err)
		}
		atExit(func() { exec.Command("umount", d).Run() })
	}
	r := &run{bin: bin, dir: filepath.Join(d, "data"), addr: fmt.Sprintf("127.0.0.1:%d", *port),
		metrics: fmt.Sprintf("127.0.0.1:%d", *port+1)}
	ok := r.measure(d, *workers, *full)
	exit()
	if !ok {
		fmt.Println("diskfull: FAILED")
		os.Exit(1)
	}
	fmt.Println("diskfull: passed")
}

// cleanups run at exit, last first, fatal errors included: no node is
// left running, no file system mounted.
var (
	cleanupMu sync.Mutex
	cleanups  []func()
)

func atExit(f func()) {
	cleanupMu.Lock()
	defer cleanupMu.Unlock()
	cleanups = append(cleanups, f)
}

func exit() {
	cleanupMu.Lock()
	defer cleanupMu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	cleanups = nil
}

func fatalf(format string, v ...any) {
	exit()
	log.Fatalf(format, v...)
}

// mountTmpfs mounts a tmpfs of the given size on a new directory.
func mountTmpfs(size string) (string, error) {
	d, err := os.MkdirTemp("", "rmbd-diskfull-")
	if err != nil {
		return "", err
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", d).CombinedOutput(); err != nil {
		return "", fmt.Errorf("mount a tmpfs on %s (root, or run under unshare -Urm; or give -dir): %v: %s", d, err, out)
	}
	return d, nil
}

type run struct {
	bin, dir, addr, metrics string
	cmd                     *exec.Cmd
}

func (r *run) start() {
	r.cmd = exec.Command(r.bin, "--listen", r.addr, "--data-dir", r.dir, "--fsync", "always",
		"--metrics-listen", r.metrics, "--log-level", "warn")
	r.cmd.Stderr = os.Stderr
	if err := r.cmd.Start(); err != nil {
		fatalf("%v", err)
	}
	cmd := r.cmd
	atExit(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		c, err := client.Dial(ctx, r.addr, client.WithTCP())
		if err == nil {
			_, err = c.Ping(ctx)
			c.Close()
		}
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			fatalf("rmbd on %s did not answer within 30s: %v", r.addr, err)
		}
	}
}

func (r *run) kill() {
	r.cmd.Process.Kill() // SIGKILL: no shutdown, no last checkpoint
	r.cmd.Wait()
}

// ready asks /readyz; it reports false for anything but 200.
func (r *run) ready() bool {
	c := http.Client{Timeout: time.Second}
	res, err := c.Get("http://" + r.metrics + "/readyz")
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode == http.StatusOK
}

func dial(addr string) *client.Client {
	c, err := client.Dial(context.Background(), addr, client.WithTCP(), client.WithTimeout(2*time.Second))
	if err != nil {
		fatalf("%v", err)
	}
	return c
}

// tally is what the clients saw.
type tally struct {
	mu      sync.Mutex
	keys    []string  // acknowledged
	lastAck time.Time // when the last batch was acknowledged
	// refusals by what the node said: an error frame's code, or "broken"
	// for a connection that failed without one.
	refused map[string]int
}

func (t *tally) ack(keys []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.keys, t.lastAck = append(t.keys, keys...), time.Now()
}

func (t *tally) refuse(err error) {
	why := "broken: " + err.Error()
	var se *client.ServerError
	if errors.As(err, &se) {
		why = "error frame: " + wire.CodeName(se.Code)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refused[why]++
}

func (t *tally) since(at time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lastAck.After(at)
}

// load adds fresh keys from workers clients until ctx ends; a client whose
// connection broke dials again.
func (r *run) load(ctx context.Context, workers int, t *tally) {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			c := dial(r.addr)
			defer func() { c.Close() }()
			for i := 0; ctx.Err() == nil; i++ {
				keys := make([]string, 50)
				for j := range keys {
					keys[j] = fmt.Sprintf("w%d-%d-%d-%064d", w, i, j, 0) // long keys: the log fills faster
				}
				err := c.Add(ctx, keys...)
				switch {
				case err == nil:
					t.ack(keys)
				case ctx.Err() != nil:
				default:
					t.refuse(err)
					var se *client.ServerError
					if !errors.As(err, &se) {
						c.Close()
						c = dial(r.addr)
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
}

// fill writes a file in dir until the file system is full.
func fill(dir string) (string, error) {
	p := filepath.Join(dir, "ballast")
	f, err := os.Create(p)
	if err != nil {
		return p, err
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			return p, nil // full
		}
	}
}

func (r *run) measure(fsDir string, workers int, full time.Duration) bool {
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		log.Fatal(err)
	}
	r.start()
	t := &tally{refused: map[string]int{}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := make(chan struct{})
	go func() { r.load(ctx, workers, t); close(done) }()

	time.Sleep(time.Second) // some adds kept before the disk fills
	before := len(t.keys)
	ballast, err := fill(fsDir)
	if err != nil {
		fatalf("%v", err)
	}
	filled := time.Now()
	notReady := false
	for time.Since(filled) < full {
		notReady = notReady || !r.ready()
		time.Sleep(100 * time.Millisecond)
	}
	os.Remove(ballast)
	freed := time.Now()
	var resumed time.Duration = -1
	for time.Since(freed) < 10*time.Second {
		if t.since(freed) {
			resumed = time.Since(freed)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	readyAgain := false
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end) && !readyAgain; time.Sleep(50 * time.Millisecond) {
		readyAgain = r.ready()
	}
	time.Sleep(500 * time.Millisecond) // adds after the space came back
	cancel()
	<-done
	r.kill()
	r.start()

	c := dial(r.addr)
	defer c.Close()
	qctx, qcancel := context.WithTimeout(context.Background(), time.Minute)
	defer qcancel()
	var lost int
	for i := 0; i < len(t.keys); i += 2000 {
		batch := t.keys[i:min(i+2000, len(t.keys))]
		got, err := c.Has(qctx, batch...)
		if err != nil {
			fatalf("asking the restarted node: %v", err)
		}
		for _, ok := range got {
			if !ok {
				lost++
			}
		}
	}
	fmt.Printf("acknowledged adds: %d keys (%d before the disk filled)\n", len(t.keys), before)
	fmt.Println("refused while full:")
	for why, n := range t.refused {
		fmt.Printf("  %6d × %s\n", n, why)
	}
	fmt.Printf("/readyz false while full: %v; true again after: %v\n", notReady, readyAgain)
	if resumed < 0 {
		fmt.Println("acknowledged adds resumed: not within 10 s of space returning")
	} else {
		fmt.Printf("acknowledged adds resumed %.2f s after space returned\n", resumed.Seconds())
	}
	fmt.Printf("acknowledged keys lost after kill -9 and restart: %d of %d\n", lost, len(t.keys))
	return lost == 0 && resumed >= 0 && resumed <= 2*time.Second
}
