package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/rmbd/rmbd/wire"
)

// result is what one run measured.
type result struct {
	Op        string  `json:"op"`
	Transport string  `json:"transport"`
	Clients   int     `json:"clients"`
	Batch     int     `json:"batch"`
	Seconds   float64 `json:"seconds"`
	Requests  int64   `json:"requests"`
	Keys      int64   `json:"keys"`
	ReqPerSec float64 `json:"requests_per_sec"`
	KeyPerSec float64 `json:"keys_per_sec"`
	P50us     float64 `json:"p50_us"`
	P99us     float64 `json:"p99_us"`
	P999us    float64 `json:"p999_us"`
	Lost      int64   `json:"lost"`
	Wrong     int64   `json:"wrong"`
	Verified  int64   `json:"verified"`
}

func (r result) print(w io.Writer) {
	fmt.Fprintf(w, "%s over %s, %d clients, %d keys/frame, %.1fs\n", r.Op, r.Transport, r.Clients, r.Batch, r.Seconds)
	fmt.Fprintf(w, "  requests  %12d   %12.0f /s\n", r.Requests, r.ReqPerSec)
	fmt.Fprintf(w, "  keys      %12d   %12.0f /s\n", r.Keys, r.KeyPerSec)
	fmt.Fprintf(w, "  latency   p50 %.1fµs  p99 %.1fµs  p99.9 %.1fµs\n", r.P50us, r.P99us, r.P999us)
	fmt.Fprintf(w, "  lost %d  wrong %d  verified %d keys\n", r.Lost, r.Wrong, r.Verified)
}

// keySet is the distinct keys a run uses: "k" and a zero-padded number,
// from offset on.
func keySet(n, offset, size int) [][]byte {
	keys := make([][]byte, n)
	buf := make([]byte, n*size)
	var digits []byte
	for i := range keys {
		k := buf[i*size : (i+1)*size : (i+1)*size]
		digits = strconv.AppendInt(digits[:0], int64(offset+i), 10)
		k[0] = 'k'
		for j := 1; j < size-len(digits); j++ {
			k[j] = '0'
		}
		copy(k[max(1, size-len(digits)):], digits)
		keys[i] = k
	}
	return keys
}

// op is one kind of request a worker sends.
type op int

const (
	opHas op = iota
	opAdd
)

// stats is one worker's tally.
type stats struct {
	hist                        *hdrhistogram.Histogram
	requests, keys, lost, wrong int64
}

func newStats() *stats {
	return &stats{hist: hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)}
}

func (s *stats) merge(o *stats) {
	s.hist.Merge(o.hist)
	s.requests += o.requests
	s.keys += o.keys
	s.lost += o.lost
	s.wrong += o.wrong
}

// worker is one closed-loop client.
type worker interface {
	// do sends one request for keys and waits for its answer; it returns
	// how many answers were wrong (has: false for an added key).
	do(o op, keys [][]byte) (wrong int, err error)
	close()
}

func bench(ctx context.Context, c config, log io.Writer) (result, error) {
	keys := keySet(c.keys, c.keyOffset, c.keySize)
	dial := func(id int) (any, error) {
		if c.tcp {
			return dialTCP(c, id)
		}
		return dialUDP(c, id)
	}
	if c.op != "add" {
		began := time.Now()
		if err := loadKeys(c, keys, dial); err != nil {
			return result{}, fmt.Errorf("adding the keys first: %w", err)
		}
		fmt.Fprintf(log, "added %d keys in %v\n", len(keys), time.Since(began).Round(time.Millisecond))
	}

	total := newStats()
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, c.clients)
	runCtx, cancel := context.WithTimeout(ctx, c.duration)
	defer cancel()
	picks := make([]func(int) (op, [][]byte), c.clients)
	picked := make([]int, c.clients) // requests each client made
	for id := range picks {
		picks[id] = picker(c, keys, id, &picked[id])
	}
	began := time.Now()
	if !c.tcp {
		loop, err := newUDPLoop(c, picks)
		if err != nil {
			return result{}, err
		}
		err = loop.run(runCtx, total)
		loop.close()
		if err != nil {
			return result{}, err
		}
	}
	for id := range c.clients {
		if !c.tcp {
			break
		}
		w, err := dialTCP(c, id)
		if err != nil {
			return result{}, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := newStats()
			if err := w.run(runCtx, picks[id], s); err != nil {
				errs <- err
			}
			w.close()
			mu.Lock()
			total.merge(s)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(began).Seconds()
	close(errs)
	for err := range errs {
		return result{}, err
	}
	res := result{
		Op: c.op, Transport: "udp", Clients: c.clients, Batch: c.batch,
		Seconds: elapsed, Requests: total.requests, Keys: total.keys,
		ReqPerSec: float64(total.requests) / elapsed, KeyPerSec: float64(total.keys) / elapsed,
		P50us: float64(total.hist.ValueAtQuantile(50)), P99us: float64(total.hist.ValueAtQuantile(99)),
		P999us: float64(total.hist.ValueAtQuantile(99.9)), Lost: total.lost, Wrong: total.wrong,
	}
	if c.tcp {
		res.Transport = "tcp"
	}
	if c.classic {
		res.Transport += " (classic frames)"
	}
	// Verify: every key the run added (for has and mixed: all of them) is
	// present.
	check := keys
	if c.op == "add" {
		check = touched(c, keys, picked)
	}
	wrong, err := verify(c, check, dial)
	if err != nil {
		return res, fmt.Errorf("verifying: %w", err)
	}
	res.Wrong += int64(wrong)
	res.Verified = int64(len(check))
	return res, nil
}

// picker returns client id's request sequence: for mixed, add and has
// frames in turn; keys walk the set from the client's own offset. It
// counts the requests it hands out in *count.
func picker(c config, keys [][]byte, id int, count *int) func(int) (op, [][]byte) {
	next := start(c, len(keys), id)
	return func(i int) (op, [][]byte) {
		*count++
		o := opHas
		if c.op == "add" || c.op == "mixed" && i%2 == 0 {
			o = opAdd
		}
		if next+c.batch > len(keys) {
			next = 0
		}
		k := keys[next : next+c.batch]
		next += c.batch
		return o, k
	}
}

// start is where client id begins in the key set.
func start(c config, keys, id int) int { return id * (keys / c.clients) }

// touched returns the keys the clients used, given how many requests each
// made: the ones an add run must have added.
func touched(c config, keys [][]byte, picked []int) [][]byte {
	used := make([]bool, len(keys))
	for id, n := range picked {
		next := start(c, len(keys), id)
		for range min(n, len(keys)/c.batch+1) {
			if next+c.batch > len(keys) {
				next = 0
			}
			for j := next; j < next+c.batch; j++ {
				used[j] = true
			}
			next += c.batch
		}
	}
	var out [][]byte
	for i, u := range used {
		if u {
			out = append(out, keys[i])
		}
	}
	return out
}

// loadKeys adds every key, retrying lost requests, before a has run.
func loadKeys(c config, keys [][]byte, dial func(int) (any, error)) error {
	return eachBatch(c, keys, dial, opAdd, func(int) {})
}

// verify asks for every key (for add, the ones the run could have added:
// all of them were added at least once when the run covered the set) and
// counts the absent.
func verify(c config, keys [][]byte, dial func(int) (any, error)) (int, error) {
	wrong := 0
	var mu sync.Mutex
	err := eachBatch(c, keys, dial, opHas, func(w int) { mu.Lock(); wrong += w; mu.Unlock() })
	return wrong, err
}

// eachBatch sends o for every key in batches over a few workers, retrying
// lost requests up to 10 times.
func eachBatch(c config, keys [][]byte, dial func(int) (any, error), o op, tally func(wrong int)) error {
	const workers = 4
	batch := max(c.batch, 32) // extended batches, even in classic mode: adds need acks
	for !c.tcp && batch > 1 && wire.BatchSize(batch, batch*c.keySize) > wire.MaxDatagram {
		batch /= 2
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for id := range workers {
		w, err := dial(1000 + id)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sw := w.(worker)
			defer sw.close()
			for start := id * batch; start < len(keys); start += workers * batch {
				part := keys[start:min(start+batch, len(keys))]
				for try := 0; ; try++ {
					wrong, err := sw.do(o, part)
					if err == errLost && try < 10 {
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					tally(wrong)
					break
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}
