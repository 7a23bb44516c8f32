// Command respload measures two abuses of a node's RESP listener against
// a real rmbd process on loopback, and fails (exit 1) if the node does
// not keep its promises:
//
//   - madd: six clients each send a BF.MADD of 1,000,000 items at once,
//     and again as soon as it is answered, for -for, while another client
//     sends PINGs one at a time. The node's resident memory may grow by at
//     most --max-buffer-bytes + 16 MiB, and the PINGs' 99th percentile
//     stays within 5 ms. The six run as a process of their own at the
//     lowest CPU priority (nice 19), and the PINGs ahead of the node (nice
//     -10, when allowed): they stand in for clients on machines of their
//     own, and the PINGs measure the node, not their own wait for a core
//     (on a machine of two cores, a waking thread may wait for the busy
//     node's thread to use up its time slice, up to a scheduler tick).
//
//   - auth: one client pipelines 20,000 wrong AUTHs on one connection
//     (answered at most 3 times before the connection closes), then
//     guesses as fast as it can for a few seconds, reconnecting whenever
//     it is closed: the guesses answered per second are printed.
//
//     go build -o /tmp/rmbd ./cmd/rmbd && go run ./bench/respload -rmbd /tmp/rmbd
//
// Every phase is bounded in time.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Promises checked.
const (
	maxPingP99   = 5 * time.Millisecond
	rssSlack     = 16 << 20
	bufferBudget = 64 << 20 // the node's default --max-buffer-bytes
	password     = "right-password"
	sampleEvery  = 5 * time.Millisecond
	probeNice    = -10
)

func main() {
	bin := flag.String("rmbd", "bin/rmbd", "the rmbd binary to run")
	port := flag.Int("port", 18960, "loopback port for the node's frames; RESP listens on the next")
	only := flag.String("only", "madd,auth", "the phases to run, comma-separated: madd, auth")
	clients := flag.Int("clients", 6, "madd: clients each sending one BF.MADD at once")
	items := flag.Int("items", 1_000_000, "madd: items per BF.MADD")
	maddFor := flag.Duration("for", 10*time.Second, "madd: how long the clients send BF.MADDs (each at least one)")
	guessFor := flag.Duration("guess-for", 5*time.Second, "auth: how long to guess")
	check := flag.Bool("check", true, "exit 1 when a promise does not hold")
	attack := flag.String("attack", "", "(internal) run as the BF.MADD clients' process, at this RESP address")
	flag.Parse()
	if *attack != "" {
		maddClients(*attack, *clients, *items, *maddFor)
		return
	}
	ok := true
	for _, ph := range strings.Split(*only, ",") {
		var pass bool
		var err error
		switch ph {
		case "madd":
			pass, err = runMADD(*bin, *port, *clients, *items, *maddFor)
		case "auth":
			pass, err = runAuth(*bin, *port, *guessFor)
		default:
			err = fmt.Errorf("unknown phase %q", ph)
		}
		if err != nil {
			log.Fatal(err)
		}
		ok = ok && pass
	}
	if *check && !ok {
		os.Exit(1)
	}
}

// node is the rmbd process under test.
type node struct {
	cmd  *exec.Cmd
	resp string
}

func startNode(bin string, port int, flags ...string) (*node, error) {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	respAddr := fmt.Sprintf("127.0.0.1:%d", port+1)
	cmd := exec.Command(bin, append([]string{"--listen", addr, "--resp-listen", respAddr, "--log-level", "error"}, flags...)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	n := &node{cmd: cmd, resp: respAddr}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.Dial("tcp", respAddr); err == nil {
			c.Close()
			return n, nil
		}
		if time.Now().After(deadline) {
			n.stop()
			return nil, fmt.Errorf("the node at %s does not answer", respAddr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (n *node) stop() {
	n.cmd.Process.Kill()
	n.cmd.Wait()
}

// memory returns the node's resident memory and its peak, in bytes.
func (n *node) memory() (rss, hwm int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", n.cmd.Process.Pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			hwm = kb << 10
		}
	}
	return rss, hwm
}

// conn is a RESP client connection.
type conn struct {
	c net.Conn
	r *bufio.Reader
}

func dial(addr string) (*conn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &conn{c: c, r: bufio.NewReaderSize(c, 64<<10)}, nil
}

// appendCommand appends args as a RESP array of bulk strings.
func appendCommand(b []byte, args ...string) []byte {
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, "\r\n"...)
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, "\r\n"...)
		b = append(b, a...)
		b = append(b, "\r\n"...)
	}
	return b
}

// reply reads one reply: its first line, and for an array the count of
// its elements that were :1 (every element must be an integer).
func (c *conn) reply() (line string, ones int, err error) {
	line, err = c.r.ReadString('\n')
	if err != nil {
		return "", 0, err
	}
	line = strings.TrimRight(line, "\r\n")
	if !strings.HasPrefix(line, "*") {
		return line, 0, nil
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil {
		return line, 0, err
	}
	for range n {
		e, err := c.r.ReadString('\n')
		if err != nil {
			return line, ones, err
		}
		switch e {
		case ":1\r\n", "#t\r\n":
			ones++
		case ":0\r\n", "#f\r\n":
		default:
			return line, ones, fmt.Errorf("unexpected element %q", e)
		}
	}
	return line, ones, nil
}

// runMADD runs the madd phase.
func runMADD(bin string, port, clients, items int, d time.Duration) (bool, error) {
	n, err := startNode(bin, port)
	if err != nil {
		return false, err
	}
	defer n.stop()
	time.Sleep(500 * time.Millisecond) // the node settles after its start
	base, _ := n.memory()
	self, err := os.Executable()
	if err != nil {
		return false, err
	}
	att := exec.Command("nice", "-n", "19", self, "-attack", n.resp, "-clients", strconv.Itoa(clients),
		"-items", strconv.Itoa(items), "-for", d.String())
	att.Stderr = os.Stderr
	out, err := att.StdoutPipe()
	if err != nil {
		return false, err
	}
	if err := att.Start(); err != nil {
		return false, err
	}
	setNice(probeNice)
	defer setNice(0)
	done := make(chan struct{})
	var peak atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // sample the node's memory
		defer wg.Done()
		for {
			rss, hwm := n.memory()
			peak.Store(max(peak.Load(), rss, hwm))
			select {
			case <-done:
				return
			case <-time.After(sampleEvery):
			}
		}
	}()
	var pings []time.Duration
	var pingErr error
	wg.Add(1)
	go func() { // another client's PINGs, one at a time
		defer wg.Done()
		pings, pingErr = pingUntil(n.resp, done, time.Now().Add(d+time.Minute))
	}()
	report, _ := io.ReadAll(out)
	attErr := att.Wait()
	close(done)
	wg.Wait()
	rss, _ := n.memory()
	growth := peak.Load() - base
	p50, p99, pmax := percentiles(pings)
	fmt.Printf("madd: %s, %d clients × BF.MADD of %d items for %v (clients at nice 19, PINGs at %d)\n", bin, clients, items, d, probeNice)
	fmt.Print(string(report))
	fmt.Printf("madd: RSS %.1f MiB before, peak %.1f MiB (+%.1f MiB), %.1f MiB after\n", mib(base), mib(peak.Load()), mib(growth), mib(rss))
	fmt.Printf("madd: PING ×%d: p50 %v p99 %v max %v (err %v)\n", len(pings), p50, p99, pmax, pingErr)
	pass := growth <= bufferBudget+rssSlack && p99 <= maxPingP99 && pingErr == nil && attErr == nil
	fmt.Printf("madd: promise (growth ≤ %d MiB, PING p99 ≤ %v): %v\n", (bufferBudget+rssSlack)>>20, maxPingP99, verdict(pass))
	return pass, nil
}

// maddClients is the BF.MADD clients' process: each sends its command,
// reads the reply, and again until d has passed; it prints what they got.
func maddClients(addr string, clients, items int, d time.Duration) {
	cmds := make([][]byte, clients)
	for i := range cmds {
		args := []string{"BF.MADD", "big"}
		for j := range items {
			args = append(args, fmt.Sprintf("item-%d-%d", i, j))
		}
		cmds[i] = appendCommand(nil, args...)
	}
	end := time.Now().Add(d)
	var mu sync.Mutex
	replies := map[string]int{}
	var took []time.Duration
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for first := true; first || time.Now().Before(end); first = false {
				t := time.Now()
				r := madd(addr, cmds[i], items, end.Add(time.Minute))
				mu.Lock()
				replies[r]++
				took = append(took, time.Since(t))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	p50, _, pmax := percentiles(took)
	fmt.Printf("madd: %d commands, each answered in p50 %v max %v\n", len(took), p50.Round(time.Millisecond), pmax.Round(time.Millisecond))
	for r, c := range replies {
		fmt.Printf("madd: ×%d %s\n", c, r)
	}
}

// madd sends one command and reads its reply, within deadline.
func madd(addr string, cmd []byte, items int, deadline time.Time) string {
	c, err := dial(addr)
	if err != nil {
		return err.Error()
	}
	defer c.c.Close()
	c.c.SetDeadline(deadline)
	werr := make(chan error, 1)
	go func() { _, err := c.c.Write(cmd); werr <- err }()
	line, _, err := c.reply()
	if err != nil {
		return fmt.Sprintf("%q: %v", line, err)
	}
	if line != fmt.Sprintf("*%d", items) {
		return fmt.Sprintf("%q", line)
	}
	<-werr
	return fmt.Sprintf("answered: %d items", items)
}

// pingUntil sends PINGs one at a time until done or the deadline, and
// returns each one's round trip.
func pingUntil(addr string, done <-chan struct{}, deadline time.Time) ([]time.Duration, error) {
	c, err := dial(addr)
	if err != nil {
		return nil, err
	}
	defer c.c.Close()
	c.c.SetDeadline(deadline)
	ping := appendCommand(nil, "PING")
	var ds []time.Duration
	for {
		select {
		case <-done:
			return ds, nil
		default:
		}
		t := time.Now()
		if _, err := c.c.Write(ping); err != nil {
			return ds, err
		}
		line, _, err := c.reply()
		if err != nil {
			return ds, err
		}
		if line != "+PONG" {
			return ds, fmt.Errorf("PING answered %q", line)
		}
		ds = append(ds, time.Since(t))
		time.Sleep(time.Millisecond)
	}
}

// runAuth runs the auth phase.
func runAuth(bin string, port int, guessFor time.Duration) (bool, error) {
	dir, err := os.MkdirTemp("", "respload")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(dir)
	pwFile := filepath.Join(dir, "passwords")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		return false, err
	}
	n, err := startNode(bin, port, "--resp-password-file", pwFile)
	if err != nil {
		return false, err
	}
	defer n.stop()
	answered, err := pipelinedGuesses(n.resp, 20_000)
	if err != nil {
		return false, err
	}
	fmt.Printf("auth: %s, 20,000 wrong AUTHs pipelined on one connection: %d answered before it closed\n", bin, answered)
	guesses, conns := guessLoop(n.resp, guessFor)
	fmt.Printf("auth: one source guessing for %v: %d wrong passwords answered (%.1f/s) on %d connections\n",
		guessFor, guesses, float64(guesses)/guessFor.Seconds(), conns)
	pass := answered <= 3
	fmt.Printf("auth: promise (at most 3 answers per connection): %v\n", verdict(pass))
	return pass, nil
}

// pipelinedGuesses sends n wrong AUTHs at once and counts the answers
// until the connection closes (or, within 10 s, the last answer).
func pipelinedGuesses(addr string, n int) (int, error) {
	c, err := dial(addr)
	if err != nil {
		return 0, err
	}
	defer c.c.Close()
	c.c.SetDeadline(time.Now().Add(10 * time.Second))
	var b []byte
	for i := range n {
		b = appendCommand(b, "AUTH", fmt.Sprintf("wrong-%d", i))
	}
	go c.c.Write(b)
	answered := 0
	for answered < n {
		line, _, err := c.reply()
		if err != nil {
			break
		}
		if strings.HasPrefix(line, "-WRONGPASS") {
			answered++
		}
	}
	return answered, nil
}

// guessLoop guesses for d, 100 AUTHs pipelined at a time, reconnecting
// whenever the node closes the connection; it returns the wrong
// passwords answered and the connections used.
func guessLoop(addr string, d time.Duration) (guesses, conns int) {
	end := time.Now().Add(d)
	others := map[string]int{}
	defer func() {
		for l, n := range others {
			fmt.Printf("auth: ×%d %s\n", n, l)
		}
	}()
	var batch []byte
	for i := range 100 {
		batch = appendCommand(batch, "AUTH", "guess-"+strconv.Itoa(i))
	}
	for time.Now().Before(end) {
		c, err := dial(addr)
		if err != nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		conns++
		c.c.SetDeadline(end)
		for time.Now().Before(end) {
			if _, err := c.c.Write(batch); err != nil {
				break
			}
			got := 0
			for ; got < 100; got++ {
				line, _, err := c.reply()
				if err != nil {
					break
				}
				if strings.HasPrefix(line, "-WRONGPASS") {
					guesses++
				} else {
					others[line]++
				}
			}
			if got < 100 {
				break
			}
		}
		c.c.Close()
	}
	return guesses, conns
}

func percentiles(ds []time.Duration) (p50, p99, pmax time.Duration) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(q float64) time.Duration {
		return s[min(len(s)-1, int(q*float64(len(s))))].Round(10 * time.Microsecond)
	}
	return at(0.5), at(0.99), s[len(s)-1].Round(10 * time.Microsecond)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func verdict(ok bool) string {
	if ok {
		return "holds"
	}
	return "BROKEN"
}
