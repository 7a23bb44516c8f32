package membership

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/rmbd/rmbd/wire"
)

// rejoinLoop joins, every RejoinInterval, the seeds and recently failed
// members that are not alive: after a partition outlasts the failure
// detector each side has declared the other dead, and only a new join
// brings them back together.
func (m *Membership) rejoinLoop(ctx context.Context) {
	t := time.NewTicker(m.cfg.RejoinInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case g := <-m.swaps:
			m.swap(g)
			continue
		case <-t.C:
		}
		if targets := m.rejoinTargets(ctx); len(targets) > 0 {
			if n, err := m.ml.Join(targets); n > 0 {
				m.log.Info("rejoined", "contacted", n, "of", targets)
			} else {
				m.log.Debug("rejoin found nobody", "targets", targets, "err", oneLine(err))
			}
		}
	}
}

// maxSwapsQueued bounds the members back waiting for a swap of state; one
// that finds the queue full waits for the regular push/pull instead.
const maxSwapsQueued = 64

// swapSoon asks the rejoin loop to swap state with the member at gossip
// address g now, rather than at a random push/pull to come: a member back
// from a partition or a restart may lack rows the others believe it has
// (merged rows are durable only at a checkpoint), and they may lack rows
// it took while away. Each side pulls what the other's digests say
// differs. It never waits: memberlist calls it under its lock.
func (m *Membership) swapSoon(g string) {
	select {
	case m.swaps <- g:
	default:
	}
}

// swap pushes and pulls state with the member at gossip address g.
func (m *Membership) swap(g string) {
	if _, err := m.ml.Join([]string{g}); err != nil {
		m.log.Debug("state swap with a member back failed; the next push/pull repairs", "gossip", g, "err", oneLine(err))
		return
	}
	m.log.Debug("swapped state with a member back", "gossip", g)
}

// rejoinTargets lists the seeds and failed members not alive now, and
// forgets members failed or left for longer than forgetFailedAfter.
func (m *Membership) rejoinTargets(ctx context.Context) []string {
	alive := map[string]bool{m.addr: true}
	var failed []string
	m.mu.Lock()
	for name, r := range m.members {
		switch {
		case r.state == wire.MemberAlive:
			alive[r.Gossip] = true
		case m.now().Sub(r.since) > forgetFailedAfter:
			delete(m.members, name)
		case r.state == wire.MemberDead:
			failed = append(failed, r.Gossip)
		}
	}
	m.mu.Unlock()
	var targets []string
	for _, s := range m.cfg.Join {
		if !m.seedAlive(ctx, s, alive) {
			targets = append(targets, s)
		}
	}
	for _, g := range failed {
		if !alive[g] {
			targets = append(targets, g)
		}
	}
	return targets
}

// seedAlive reports whether seed (HOST:PORT, HOST maybe a name) is this
// member or an alive one. A seed that does not resolve counts as absent.
func (m *Membership) seedAlive(ctx context.Context, seed string, alive map[string]bool) bool {
	host, port, err := net.SplitHostPort(seed)
	if err != nil {
		return true // validated by New; never retried
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip} // nothing to look up
	} else {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if ips, err = m.cfg.Resolver.LookupNetIP(ctx, "ip", host); err != nil {
			return false
		}
	}
	for _, ip := range ips {
		if alive[net.JoinHostPort(ip.Unmap().String(), port)] {
			return true
		}
	}
	return false
}

func (m *Membership) now() time.Time { return time.Now() }
