package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/rmbd/rmbd/client"
)

// node is the rmbd process under test.
type node struct {
	cmd  *exec.Cmd
	addr string
}

func startNode(bin string, port int, flags ...string) (*node, error) {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, append([]string{"--listen", addr, "--resp-listen", respAddr(addr), "--log-level", "error"}, flags...)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	n := &node{cmd: cmd, addr: addr}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := n.stats(); err == nil {
			return n, nil
		}
		if time.Now().After(deadline) {
			n.stop()
			return nil, fmt.Errorf("the node at %s does not answer", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// respAddr is the RESP listener of the node at addr: the next port.
func respAddr(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	return net.JoinHostPort(host, strconv.Itoa(p+1))
}

func (n *node) stop() {
	if n.cmd.Process != nil && n.cmd.ProcessState == nil {
		n.cmd.Process.Kill()
		n.cmd.Wait()
	}
}

// rss returns the node's resident memory in bytes.
func (n *node) rss() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", n.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// stats asks the node for its counters over TCP, from loopback.
func (n *node) stats() (map[string]uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, n.addr, client.WithTCP())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	st, err := c.Stats(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	for _, s := range st {
		out[s.Name] = s.Value
	}
	return out, nil
}
