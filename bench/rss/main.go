// Command rss measures the memory a node takes beside its filter: it runs
// a node whose default filter is about 1 GiB, writes every row (so that
// every page of the filter and of its change tracking is touched), lets
// the node tick, and prints its resident set next to the filter's size:
//
//	go run ./bench/rss                 # a 1 GiB filter
//	go run ./bench/rss -rows 1048576   # 64 MiB
//
// The figure the replication work promises: RSS ≤ 1.05 × filter + 24 MiB.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/node"
)

func main() {
	rows := flag.Uint64("rows", 1<<24, "rows of 64 bytes the filter should have at least (1<<24: 1 GiB)")
	flag.Parse()
	cfg := node.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.GossipListen = ""
	cfg.MaxMemory = 0
	cfg.Capacity = capacityFor(*rows)
	n, err := node.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	f := n.Filter()
	before := rss()
	chunk := make([]byte, 1024*64)
	for i := range chunk {
		chunk[i] = 0xff
	}
	for first := uint64(0); first < f.Rows(); first += 1024 {
		c := min(1024, f.Rows()-first)
		if _, err := f.MergeRows(f.Fingerprint(), first, chunk[:c*64], nil); err != nil {
			log.Fatal(err)
		}
	}
	time.Sleep(3 * cfg.SyncInterval) // the ticker stamps every block
	after := rss()
	size := f.SizeBytes()
	cancel()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	const mib = 1 << 20
	fmt.Printf("filter %d rows, %.1f MiB (change tracking %.2f MiB, %.2f %%)\n", f.Rows(), float64(size)/mib,
		float64(f.TrackingBytes())/mib, 100*float64(f.TrackingBytes())/float64(size))
	fmt.Printf("node RSS %.1f MiB before the rows were written, %.1f MiB after: %.3f × filter, filter + %.1f MiB\n",
		float64(before)/mib, float64(after)/mib, float64(after)/float64(size), float64(after-size)/mib)
}

// capacityFor returns the smallest capacity at 1 % whose filter has at
// least rows rows.
func capacityFor(rows uint64) uint64 {
	lo, hi := uint64(1), rows*64
	for lo < hi {
		mid := (lo + hi) / 2
		r, _, err := filter.SizeBlocked(mid, 0.01)
		if err == nil && r >= rows {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// rss returns this process's resident set in bytes.
func rss() uint64 {
	fh, err := os.Open("/proc/self/status")
	if err != nil {
		log.Fatal(err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb << 10
		}
	}
	log.Fatal("no VmRSS in /proc/self/status")
	return 0
}
