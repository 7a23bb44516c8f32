package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"
)

// cluster is the rmbd processes this bench started, by member name: it
// ends only those, by their process, on every way out.
type cluster struct {
	bin   string
	dir   string   // the run's temporary directory: data/ and logs/
	port  int      // member i serves on port+i, gossips on port+gossipOffset+i
	flags []string // what every member is started with besides its own

	members map[string]*member
	next    int // the index of the next fresh member
}

// gossipOffset separates the gossip ports from the data ports.
const gossipOffset = 20

// member is one rmbd process.
type member struct {
	name    string
	index   int
	addr    string // data address, TCP
	gossip  string
	cmd     *exec.Cmd
	exited  chan struct{}
	log     *os.File
	started time.Time
	gone    bool // killed or left: not part of the cluster any more
	conn    *conn
}

func (c *cluster) logDir() string { return filepath.Join(c.dir, "logs") }

// gossipAddr is the gossip address of member index.
func (c *cluster) gossipAddr(index int) string {
	return fmt.Sprintf("127.0.0.1:%d", c.port+gossipOffset+index)
}

// fresh starts a new member, with an empty data directory, joining at
// the gossip addresses given.
func (c *cluster) fresh(join []string) (*member, error) {
	c.next++
	return c.start(c.next-1, fmt.Sprint("m", c.next-1), join)
}

// restart starts m again, on its data directory, joining at the gossip
// addresses given.
func (c *cluster) restart(m *member, join []string) (*member, error) {
	return c.start(m.index, m.name, join)
}

// start starts member index as name, on its data directory (made if
// new), joining at the gossip addresses given.
func (c *cluster) start(index int, name string, join []string) (*member, error) {
	m := &member{name: name, index: index, addr: fmt.Sprintf("127.0.0.1:%d", c.port+index),
		gossip: c.gossipAddr(index), exited: make(chan struct{})}
	data := filepath.Join(c.dir, "data", name)
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.logDir(), 0o755); err != nil {
		return nil, err
	}
	lf, err := os.OpenFile(filepath.Join(c.logDir(), name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	args := []string{"--listen", m.addr, "--gossip-listen", m.gossip, "--node-name", name, "--data-dir", data}
	for _, j := range join {
		args = append(args, "--join", j)
	}
	args = append(args, c.flags...)
	m.cmd = exec.Command(c.bin, args...)
	m.cmd.Stdout, m.cmd.Stderr = lf, lf
	m.cmd.SysProcAttr = procAttr()
	fmt.Fprintf(lf, "# %s %s\n", c.bin, strings.Join(args, " "))
	if err := m.cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	m.log, m.started = lf, time.Now()
	go func() { m.cmd.Wait(); lf.Close(); close(m.exited) }()
	c.members[name] = m
	return m, nil
}

// dial connects to m once it answers, within ctx.
func (c *cluster) dial(ctx context.Context, m *member) error {
	for {
		cn, err := dialConn(ctx, m.addr)
		if err == nil {
			if _, err = cn.stats(ctx); err == nil {
				m.conn = cn
				return nil
			}
			cn.Close()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer on %s: %w", m.name, m.addr, err)
		case <-m.exited:
			return fmt.Errorf("%s exited (%v): see %s", m.name, m.cmd.ProcessState, filepath.Join(c.logDir(), m.name+".log"))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// control returns the connection the bench asks the member name on,
// dialing it again if a request broke it.
func (c *cluster) control(ctx context.Context, name string) (*conn, error) {
	m := c.members[name]
	if m.conn == nil {
		cn, err := dialConn(ctx, m.addr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		m.conn = cn
	}
	return m.conn, nil
}

// failed drops the member's connection after a request on it failed
// (a refusal leaves it be): the next request dials again.
func (c *cluster) failed(name string, err error) {
	var no *refusal
	if m := c.members[name]; m.conn != nil && !errors.As(err, &no) {
		m.conn.Close()
		m.conn = nil
	}
}

// joinLive returns the gossip addresses of the live members.
func (c *cluster) joinLive() []string {
	var out []string
	for _, name := range c.live() {
		out = append(out, c.members[name].gossip)
	}
	return out
}

// live returns the names of the members not killed or gone, sorted.
func (c *cluster) live() []string {
	var out []string
	for name, m := range c.members {
		if !m.gone {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// kill ends m at once (SIGKILL: no shutdown, no last write).
func (c *cluster) kill(m *member) {
	m.gone = true
	m.cmd.Process.Kill()
	<-m.exited
	if m.conn != nil {
		m.conn.Close()
	}
}

// leave ends m gracefully (SIGTERM: it leaves the cluster), killing it if
// it takes longer than wait.
func (c *cluster) leave(m *member, wait time.Duration) (time.Duration, error) {
	m.gone = true
	began := time.Now()
	m.cmd.Process.Signal(syscall.SIGTERM)
	if m.conn != nil {
		m.conn.Close()
	}
	select {
	case <-m.exited:
		return time.Since(began), nil
	case <-time.After(wait):
		m.cmd.Process.Kill()
		<-m.exited
		return time.Since(began), fmt.Errorf("%s did not stop within %v of SIGTERM: killed", m.name, wait)
	}
}

// stop kills every member still running.
func (c *cluster) stop() {
	for _, m := range c.members {
		select {
		case <-m.exited:
		default:
			m.cmd.Process.Kill()
			<-m.exited
		}
		if m.conn != nil {
			m.conn.Close()
		}
	}
}

// formed waits until every live member sees exactly the live members
// alive, and returns how long that took from since.
func (c *cluster) formed(ctx context.Context, since time.Time) (time.Duration, error) {
	want := c.live()
	for {
		ok, why := true, ""
		for _, name := range want {
			cn, err := c.control(ctx, name)
			var got []string
			if err == nil {
				if got, err = cn.alive(ctx); err != nil {
					c.failed(name, err)
				}
			}
			if err != nil {
				ok, why = false, err.Error()
				break
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				ok, why = false, fmt.Sprintf("%s sees %v alive", name, got)
				break
			}
		}
		if ok {
			return time.Since(since), nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("the members %v did not all see each other alive: %s", want, why)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// execOutput runs bin with args, for at most 10 s, and returns what it
// printed.
func execOutput(bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	return string(out), err
}
