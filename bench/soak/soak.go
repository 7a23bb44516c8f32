package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// soak runs the abuses and keeps the verdict.
type soak struct {
	n     *node
	ph    phases
	quick bool
	nice  int
	only  string
	ok    bool
	rows  []string
}

// abuse is one attack, run by the attacking process (attacker.go);
// counters are the node's counters that must say what happened.
type abuse struct {
	name     string
	attack   string
	conns    bool     // holds connections: memory is checked, and again after they close
	counters []string // at least one must move
	checkUDP bool     // the UDP client must keep its figures (lost, p99)
	checkTCP bool     // the TCP client must
}

func (s *soak) run() {
	s.ok = true
	abuses := []abuse{
		{"1,000 connections promising 1 MiB, sending all but 1 byte", "promises", true, []string{"tcp_closed_no_memory", "tcp_frame_timeouts"}, false, false},
		{"1,000 connections sending only a header", "headers", true, []string{"tcp_frame_timeouts"}, false, false},
		{"1,000 RESP connections promising 512 KiB, all but 1 byte", "resp", true, []string{"tcp_closed_no_memory", "tcp_frame_timeouts"}, false, false},
		{"2,000 idle connections", "idle", true, []string{"tcp_evicted_idle"}, false, true},
		{"a flood of stats requests", "stats", false, []string{"udp_replies_cut", "udp_blocks", "udp_shed"}, true, false},
		{"a flood of has requests", "has", false, []string{"udp_blocks", "udp_shed"}, true, false},
		{"no attack: the attacker's core kept busy", "spin", false, nil, false, false},
	}
	fmt.Printf("soak: node %s (pid %d), each abuse %v (baseline %v, settling %v), attackers at nice %d\n\n",
		s.n.addr, s.n.cmd.Process.Pid, s.ph.abuse, s.ph.baseline, s.ph.settle, s.nice)
	for _, a := range abuses {
		if s.only == "" && a.attack != "spin" || slices.Contains(strings.Split(s.only, ","), a.attack) {
			s.one(a)
		}
	}
	fmt.Println()
	for _, r := range s.rows {
		fmt.Println(r)
	}
}

// probes runs both well-behaved clients for d.
func (s *soak) probes(d time.Duration) (udp, tcp result) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); udp = probeUDP(ctx, s.n.addr) }()
	go func() { defer wg.Done(); tcp = probeTCP(ctx, s.n.addr) }()
	wg.Wait()
	return udp, tcp
}

const mib = 1 << 20

func (s *soak) one(a abuse) {
	fmt.Printf("== %s\n", a.name)
	baseUDP, baseTCP := s.probes(s.ph.baseline)
	before, err := s.n.stats()
	if err != nil {
		s.fail("stats before: %v", err)
		return
	}
	rssBase := s.n.rss()

	ctx, cancel := context.WithTimeout(context.Background(), s.ph.abuse)
	att, err := startAttacker(a.attack, s.n.addr, s.ph.abuse, s.nice)
	if err != nil {
		cancel()
		s.fail("%s: attacker: %v", a.name, err)
		return
	}
	peak := rssBase
	sampling := make(chan struct{})
	go func() {
		defer close(sampling)
		for ctx.Err() == nil {
			peak = max(peak, s.n.rss())
			sleep(ctx, 100*time.Millisecond)
		}
	}()
	udp, tcp := s.probes(s.ph.abuse)
	cancel()
	<-sampling
	t := att.wait()
	after, err := s.n.stats()
	if err != nil {
		s.fail("stats after: %v (the node does not answer)", err)
		return
	}

	fmt.Printf("   attacker: %d connections made, %d refused, %d closed by the node, %d datagrams sent\n",
		t.Dials, t.DialFails, t.ClosedByNode, t.Sent)
	fmt.Printf("   node RSS: %.1f MiB before, %.1f MiB at most during (+%.1f)\n", float64(rssBase)/mib, float64(peak)/mib, float64(peak-rssBase)/mib)
	s.report("UDP", baseUDP, udp)
	s.report("TCP", baseTCP, tcp)
	var moved []string
	for _, name := range slices.Sorted(maps.Keys(after)) {
		if d := after[name] - before[name]; d > 0 && interesting(name) {
			moved = append(moved, fmt.Sprintf("%s +%d", name, d))
		}
	}
	fmt.Printf("   counters: %s\n", strings.Join(moved, ", "))
	counted := len(a.counters) == 0
	for _, c := range a.counters {
		counted = counted || after[c] > before[c]
	}
	if !counted && !a.conns && after["udp_kernel_drops"] == before["udp_kernel_drops"] {
		// A flood the node kept up with (nothing dropped, nothing to
		// shed) is load it served, counted by its requests.
		fmt.Printf("   the node kept up: nothing dropped, nothing to shed\n")
		counted = true
	}
	if !counted {
		s.fail("%s: none of %v moved", a.name, a.counters)
	}

	row := fmt.Sprintf("%-58s UDP lost %5.2f%% p99 %6.2f ms (×%4.1f)  TCP lost %5.2f%% p99 %6.2f ms (×%4.1f)",
		a.name, 100*udp.lossRate(), ms(udp.quantile(0.99)), ratio(udp, baseUDP), 100*tcp.lossRate(), ms(tcp.quantile(0.99)), ratio(tcp, baseTCP))
	if a.conns {
		time.Sleep(s.ph.settle)
		settled := s.n.rss()
		fmt.Printf("   node RSS %v after they closed: %.1f MiB (%+.1f on before)\n", s.ph.settle, float64(settled)/mib, float64(settled-rssBase)/mib)
		row += fmt.Sprintf("  RSS +%.1f MiB, then %+.1f MiB", float64(peak-rssBase)/mib, float64(settled-rssBase)/mib)
		if peak-rssBase > 80*mib {
			s.fail("%s: RSS grew %.1f MiB (at most 80)", a.name, float64(peak-rssBase)/mib)
		}
		if settled-rssBase > 32*mib {
			s.fail("%s: RSS %.1f MiB over its baseline %v after (at most 32)", a.name, float64(settled-rssBase)/mib, s.ph.settle)
		}
	}
	s.rows = append(s.rows, row)
	if a.checkUDP {
		s.check(a.name, "UDP", baseUDP, udp)
	}
	if a.checkTCP {
		s.check(a.name, "TCP", baseTCP, tcp)
	}
}

// check holds a well-behaved client's figures to what is promised: at
// most 1% lost, a p99 at most 10 times its baseline. A quick run's few
// hundred requests make a p99 of three: it is reported, not held.
func (s *soak) check(name, proto string, base, got result) {
	if got.lossRate() > 0.01 {
		s.fail("%s: the %s client lost %.2f%% of its requests (at most 1%%)", name, proto, 100*got.lossRate())
	}
	if got.dialFails > 0 {
		s.fail("%s: the %s client could not connect %d times", name, proto, got.dialFails)
	}
	if r := ratio(got, base); r > 10 && !s.quick {
		s.fail("%s: the %s client's p99 is %.1f × its baseline (at most 10)", name, proto, r)
	}
}

func (s *soak) report(proto string, base, got result) {
	fmt.Printf("   %s client: %d requests, %d lost (%.2f%%), p50 %.2f ms, p99 %.2f ms; baseline p50 %.2f ms, p99 %.2f ms",
		proto, got.sent, got.lost, 100*got.lossRate(), ms(got.quantile(0.5)), ms(got.quantile(0.99)),
		ms(base.quantile(0.5)), ms(base.quantile(0.99)))
	if got.dials > 0 {
		fmt.Printf("; %d connections, %d failed", got.dials, got.dialFails)
	}
	if len(got.lostAt) > 0 {
		fmt.Printf("; lost at %v", got.lostAt)
	}
	fmt.Println()
}

func (s *soak) fail(format string, a ...any) {
	s.ok = false
	fmt.Printf("   FAIL: "+format+"\n", a...)
}

// ratio is got's p99 over base's.
func ratio(got, base result) float64 {
	if base.quantile(0.99) == 0 {
		return 0
	}
	return float64(got.quantile(0.99)) / float64(base.quantile(0.99))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// interesting says whether a counter tells of abuse or of the load.
func interesting(name string) bool {
	for _, p := range []string{"tcp_", "udp_", "dropped", "bad_frames", "forbidden", "unsupported", "buffer_", "has_queries"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}
