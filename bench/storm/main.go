// Command storm replays the auto-create storm against a three-member
// cluster on one machine (go run ./bench/storm, as root):
//
//	make build && sudo go run ./bench/storm -rmbd bin/rmbd
//	sudo go run ./bench/storm -rmbd old/rmbd -flags ''     # a build without quotas
//
// A client that is not an admin sends, over one TCP connection to the
// first member, adds to count new filter names, keys keys to each; then an
// admin creates a filter of its own. It reports the filters each member
// holds and each member's RSS before and after (once the catalog has had
// time to spread), and whether the admin's create succeeded.
//
// The client must not be on loopback, which is always an admin: the tool
// adds two addresses of 10.99.0.0/24 to the loopback interface (needs
// root), binds the nodes to the first and the client to the second, and
// removes them at the end. Traffic never leaves the machine.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/rmbd/rmbd/auth"
	"github.com/rmbd/rmbd/client"
	"github.com/rmbd/rmbd/wire"
)

const (
	nodeIP   = "10.99.0.1"
	clientIP = "10.99.0.9"
)

func main() {
	rmbd := flag.String("rmbd", "bin/rmbd", "the rmbd binary to run")
	port := flag.Int("port", 19100, "first port (each member takes a data and a gossip port)")
	count := flag.Int("count", 1100, "filter names the storm adds to")
	keys := flag.Int("keys", 3000, "keys added to each name")
	extra := flag.String("flags", "--auto-create 10.99.0.0/24", "flags every member gets besides its addresses and the cluster key (space-separated)")
	spread := flag.Duration("spread", 15*time.Second, "how long the catalog has to spread before RSS is read")
	flag.Parse()
	bin, err := filepath.Abs(*rmbd)
	if err != nil {
		log.Fatal(err)
	}
	for _, ip := range []string{nodeIP, clientIP} {
		out, err := exec.Command("ip", "addr", "add", ip+"/32", "dev", "lo").CombinedOutput()
		switch {
		case err == nil:
			defer exec.Command("ip", "addr", "del", ip+"/32", "dev", "lo").Run()
		case !strings.Contains(string(out), "already assigned") && !strings.Contains(string(out), "File exists"):
			log.Fatalf("ip addr add %s dev lo (needs root): %v: %s", ip, err, out)
		}
	}
	dir, err := os.MkdirTemp("", "rmbd-storm-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	keyFile := filepath.Join(dir, "cluster.key")
	if out, err := exec.Command(bin, "keygen", keyFile).CombinedOutput(); err != nil {
		log.Fatalf("rmbd keygen: %v: %s", err, out)
	}
	var members []*member
	defer func() {
		for _, m := range members {
			m.stop()
		}
	}()
	for i := range 3 {
		args := []string{"--listen", fmt.Sprintf("%s:%d", nodeIP, *port+2*i), "--gossip-listen", fmt.Sprintf("%s:%d", nodeIP, *port+2*i+1),
			"--cluster-key-file", keyFile, "--log-level", "error"}
		if i > 0 {
			args = append(args, "--join", fmt.Sprintf("%s:%d", nodeIP, *port+1))
		}
		args = append(args, strings.Fields(*extra)...)
		m, err := start(bin, fmt.Sprintf("%s:%d", nodeIP, *port+2*i), args)
		if err != nil {
			log.Print(err)
			return
		}
		members = append(members, m)
	}
	time.Sleep(3 * time.Second) // membership settles
	before := make([]int64, len(members))
	for i, m := range members {
		before[i] = m.rss()
	}
	start := time.Now()
	served, refused, err := storm(members[0].addr, *count, *keys)
	if err != nil {
		log.Print(err)
	}
	took := time.Since(start)
	time.Sleep(*spread)
	fmt.Printf("storm: %d names × %d keys from %s to %s in %.1f s: %d served, %d refused\n",
		*count, *keys, clientIP, members[0].addr, took.Seconds(), served, refused)
	for i, m := range members {
		fmt.Printf("member %d: %d filters, RSS %.1f MiB → %.1f MiB (%+.1f MiB)\n", i+1, m.filters(keyFile),
			mib(before[i]), mib(m.rss()), mib(m.rss()-before[i]))
	}
	c, err := adminClient(members[1].addr, keyFile)
	if err == nil {
		_, err = c.CreateFilter(context.Background(), "legit", 1_000_000, 0.01)
		c.Close()
	}
	fmt.Printf("an admin's create on member 2 after the storm: %v\n", orOK(err))
}

// adminClient dials addr as an admin: sealed with the cluster key.
func adminClient(addr, keyFile string) (*client.Client, error) {
	text, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	keys, err := auth.ParseKeys(text)
	if err != nil {
		return nil, err
	}
	return client.Dial(context.Background(), addr, client.WithTCP(), client.WithClusterKeys(keys...))
}

func orOK(err error) string {
	if err != nil {
		return "failed: " + err.Error()
	}
	return "ok"
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// storm sends, over one connection from clientIP, acknowledged adds of
// keys keys to each of count new names, and counts the names served and
// those refused with an error frame.
func storm(addr string, count, keys int) (served, refused int, err error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(clientIP)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	r := wire.NewFrameReader(c, 1<<20)
	batch := make([][]byte, 0, 500)
	for i := range count {
		name := fmt.Sprintf("storm-%05d", i)
		ok := true
		for k := 0; k < keys; k += cap(batch) {
			batch = batch[:0]
			for j := k; j < min(k+cap(batch), keys); j++ {
				batch = append(batch, fmt.Appendf(nil, "%s-key-%d", name, j))
			}
			add, err := wire.AppendBatch(nil, wire.TypeAddBatch, uint32(i), wire.FlagAck, batch)
			if err != nil {
				return served, refused, err
			}
			frame, err := wire.AppendNamed(nil, name, add)
			if err != nil {
				return served, refused, err
			}
			if _, err := c.Write(frame); err != nil {
				return served, refused, fmt.Errorf("after %d names: %w", i, err)
			}
			reply, err := r.Next()
			if err != nil {
				return served, refused, fmt.Errorf("after %d names: %w", i, err)
			}
			if wire.Type(reply[0]) == wire.TypeError {
				ok = false
				break // refused: the next name
			}
		}
		if ok {
			served++
		} else {
			refused++
		}
	}
	return served, refused, nil
}

// member is one rmbd process.
type member struct {
	cmd  *exec.Cmd
	addr string
}

func start(bin, addr string, args []string) (*member, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	m := &member{cmd: cmd, addr: addr}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return m, nil
		}
	}
	m.stop()
	return nil, fmt.Errorf("rmbd on %s did not listen within 30s", addr)
}

func (m *member) stop() {
	m.cmd.Process.Kill()
	m.cmd.Wait()
}

// rss reads the process's resident set from /proc.
func (m *member) rss() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", m.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			var kb int64
			fmt.Sscan(f[1], &kb)
			return kb << 10
		}
	}
	return 0
}

// filters counts the filters the member holds (the default one too), as
// an admin lists them; -1 if it cannot say.
func (m *member) filters(keyFile string) int {
	c, err := adminClient(m.addr, keyFile)
	if err != nil {
		return -1
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fs, err := c.Filters(ctx)
	if err != nil {
		return -1
	}
	return len(fs)
}
