// Command soak runs the abuses a node must survive, one after another,
// against a real rmbd process on loopback, while well-behaved clients
// measure what they still get (make soak):
//
//	go run ./bench/soak -rmbd bin/rmbd              # the full run, a few minutes
//	go run ./bench/soak -rmbd bin/rmbd -quick       # about 45 s, as CI runs it
//
// The attackers run as a process of their own, on a core of their own
// (the last; the node and the clients keep the others) and at the lowest
// CPU priority (nice 19, -attacker-nice): they stand in for senders on
// other machines. On a machine of few cores an attacker sharing the
// node's cores takes the CPU from the node and the clients alike — and
// the kernel's work of delivering its packets with it — which measures
// the scheduler, not the node. On its own core it sends as fast as that
// core goes: on loopback, about a million datagrams a second here.
//
// The abuses: 1,000 TCP connections each promising a 1 MiB frame and
// sending all but its last byte; 1,000 sending only a frame header;
// 2,000 idle connections held open; a flood
// of stats requests; a flood of has requests. Attackers come from many
// loopback source addresses (127.1.0.0/16, 127.2.0.0/16, …), the
// well-behaved clients from 127.0.0.2 and 127.0.0.3. For each, the node's
// memory (RSS), the clients' latency and losses, and the counters that
// moved are printed, and the figures the node promises are checked: the
// run fails (exit 1) if one does not hold.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"
)

// phases sets how long each part lasts.
type phases struct {
	baseline time.Duration // the clients alone, before each abuse
	abuse    time.Duration // each abuse
	settle   time.Duration // after the connection abuses end, before RSS is read again
}

func main() {
	rmbd := flag.String("rmbd", "bin/rmbd", "the rmbd binary to run")
	port := flag.Int("port", 18900, "loopback port for the node")
	quick := flag.Bool("quick", false, "a short run (about 45 s), as CI runs it")
	attackNice := flag.Int("attacker-nice", 19, "CPU priority (nice) of the attacking process")
	probeNice := flag.Int("client-nice", -10, "CPU priority (nice) of the well-behaved clients (this process), if allowed")
	attack := flag.String("attack", "", "(internal) run as the attacking process: the abuse to run")
	addr := flag.String("addr", "", "(internal) with -attack: the node's address")
	dur := flag.Duration("for", 0, "(internal) with -attack: how long")
	cpu := flag.Int("attacker-cpu", 0, "(internal) with -attack: the core to run on")
	only := flag.String("only", "", "run only these abuses, comma-separated: promises, headers, idle, stats, has")
	flag.Parse()
	if *attack != "" {
		os.Exit(attacker(*attack, *addr, *dur, *attackNice, *cpu))
	}
	bin, err := filepath.Abs(*rmbd)
	if err != nil {
		log.Fatal(err)
	}
	ph := phases{baseline: 5 * time.Second, abuse: 25 * time.Second, settle: 30 * time.Second}
	var extra []string
	if *quick { // a frame timeout that fires within the short abuses
		ph = phases{baseline: time.Second, abuse: 5 * time.Second, settle: 5 * time.Second}
		extra = []string{"--frame-timeout", "1s"}
	}
	pinDefenders() // the node started next inherits it, and sizes itself to it
	n, err := startNode(bin, *port, extra...)
	if err != nil {
		log.Fatal(err)
	}
	// The clients stand in for clients on machines of their own: they run
	// ahead of the node and the attacker, so that what they measure is the
	// node, not their wait for a core. The node keeps the usual priority.
	setNice(*probeNice)
	defer n.stop()
	s := &soak{n: n, ph: ph, quick: *quick, nice: *attackNice, only: *only}
	s.run()
	if !s.ok {
		fmt.Println("soak: FAILED")
		n.stop()
		os.Exit(1)
	}
	fmt.Println("soak: passed")
}
