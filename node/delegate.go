package node

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/wire"
)

// NodeMeta implements memberlist.Delegate.
func (c *cluster) NodeMeta(limit int) []byte {
	b := []byte{wire.ProtocolVersion}
	b, _ = c.n.f.Fingerprint().AppendBinary(b)
	return binary.BigEndian.AppendUint16(b, c.n.l.Addr.Port())
}

// NotifyMsg implements memberlist.Delegate; rmbd sends no user messages.
func (c *cluster) NotifyMsg([]byte) {}

// GetBroadcasts implements memberlist.Delegate.
func (c *cluster) GetBroadcasts(int, int) [][]byte { return nil }

// LocalState implements memberlist.Delegate: this node's name and the
// digests of its rows.
func (c *cluster) LocalState(bool) []byte {
	b := append([]byte{byte(len(c.n.name))}, c.n.name...)
	return gossip.AppendDigests(b, c.n.f)
}

// MergeRemoteState implements memberlist.Delegate: pull the rows whose
// digests differ from the remote member, in the background. On join this
// is the bulk transfer that fills a new node.
func (c *cluster) MergeRemoteState(buf []byte, join bool) {
	if len(buf) < 1 || len(buf) < 1+int(buf[0]) {
		return
	}
	name := string(buf[1 : 1+int(buf[0])])
	digests := append([]byte(nil), buf[1+int(buf[0]):]...)
	select {
	case c.repairing <- struct{}{}:
	default:
		return // a repair is running; the next push/pull comes soon
	}
	if !c.n.spawn(func() {
		defer func() { <-c.repairing }()
		c.repair(name, digests, join)
	}) {
		<-c.repairing // shutting down
	}
}

func (c *cluster) repair(name string, digests []byte, join bool) {
	c.mu.Lock()
	m, ok := c.members[name]
	c.mu.Unlock()
	if !ok || !m.match {
		return
	}
	runs, err := gossip.Differing(c.n.f, digests)
	if err != nil {
		c.n.log.Debug("anti-entropy: digests refused", "member", name, "err", err)
		return
	}
	if len(runs) == 0 {
		return
	}
	began := time.Now()
	empty := c.n.f.LastChanged() == 0 && c.n.f.Generation() <= 1
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go func() {
		select {
		case <-c.n.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	rows, changed, err := c.n.pull(ctx, m.data, runs)
	if join && empty && err == nil {
		// A new node filled from the cluster: the members have these rows.
		c.n.mu.Lock()
		c.n.g.AssumeMembersHave(c.n.f.Advance())
		c.n.mu.Unlock()
	}
	c.n.c.inc(AntiEntropyPulls)
	c.n.c.add(AntiEntropyRows, uint64(changed))
	lvl := slog.LevelDebug
	if join || changed > 0 {
		lvl = slog.LevelInfo
	}
	c.n.log.Log(context.Background(), lvl, "anti-entropy pull", "member", name, "join", join,
		"rows", rows, "changed", changed, "took", time.Since(began).Round(time.Millisecond), "err", err)
}

// NotifyJoin implements memberlist.EventDelegate.
func (c *cluster) NotifyJoin(m *memberlist.Node) { c.update(m) }

// NotifyUpdate implements memberlist.EventDelegate.
func (c *cluster) NotifyUpdate(m *memberlist.Node) { c.update(m) }

// NotifyLeave implements memberlist.EventDelegate: a failed or departed
// member stops being a push target and goes on the rejoin list.
func (c *cluster) NotifyLeave(m *memberlist.Node) {
	if m.Name == string(c.n.name) {
		return
	}
	c.mu.Lock()
	rec, ok := c.members[m.Name]
	c.failed[m.Name] = failedRec{addr: m.Address(), at: time.Now(), left: m.State == memberlist.StateLeft}
	c.mu.Unlock()
	if ok && rec.match {
		c.n.mu.Lock()
		c.n.g.RemoveMember(rec.data)
		c.n.mu.Unlock()
	}
	c.n.log.Info("member failed or left", "member", m.Name, "gossip", m.Address())
}

func (c *cluster) update(m *memberlist.Node) {
	if m.Name == string(c.n.name) {
		return
	}
	rec, err := parseMeta(m)
	if err != nil {
		c.n.log.Warn("member with unreadable metadata ignored", "member", m.Name, "err", err)
		return
	}
	rec.match = rec.fp == c.n.f.Fingerprint()
	c.mu.Lock()
	old, known := c.members[m.Name]
	c.members[m.Name] = rec
	delete(c.failed, m.Name)
	logMismatch := !rec.match && !c.mismatch[m.Name]
	if logMismatch {
		c.mismatch[m.Name] = true
	}
	c.mu.Unlock()
	if !rec.match {
		if logMismatch {
			c.n.c.inc(MemberMismatch)
			c.n.log.Warn("member has another filter; never syncing with it", "member", m.Name,
				"theirs", rec.fp.String(), "ours", c.n.f.Fingerprint().String())
		}
		return
	}
	c.n.mu.Lock()
	if known && old.data != rec.data {
		c.n.g.RemoveMember(old.data)
	}
	added := c.n.g.AddMember(rec.data)
	c.n.mu.Unlock()
	if added {
		c.n.log.Info("member is a push target", "member", m.Name, "data", rec.data.String(), "gossip", m.Address())
	}
}

func parseMeta(m *memberlist.Node) (memberRec, error) {
	if len(m.Meta) < metaSize {
		return memberRec{}, fmt.Errorf("%d bytes of metadata", len(m.Meta))
	}
	fp, err := filter.DecodeFingerprint(m.Meta[1:])
	if err != nil {
		return memberRec{}, err
	}
	ip, ok := netip.AddrFromSlice(m.Addr)
	if !ok {
		return memberRec{}, fmt.Errorf("address %v", m.Addr)
	}
	port := binary.BigEndian.Uint16(m.Meta[1+filter.FingerprintSize:])
	return memberRec{gossip: m.Address(), data: netip.AddrPortFrom(ip.Unmap(), port), fp: fp}, nil
}
