package node

import (
	"errors"
	"net/netip"
	"time"

	"github.com/rmbd/rmbd/access"
	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/internal/hostport"
	"github.com/rmbd/rmbd/registry"
)

// Who may do what (package access): the node's policy, protected mode,
// and who may create filters, held to quotas unless an admin.

// newPolicy makes the node's policy from its config, in protected mode
// when the config leaves the node open beyond loopback (see
// Config.ProtectedMode).
func (n *Node) newPolicy() {
	cfg := n.cfg
	n.policy = access.Policy{Allow: cfg.Allow, AllowRead: cfg.AllowRead, AllowAdmin: cfg.AllowAdmin,
		AllowCreate: cfg.AllowCreate, Keyed: n.keys != nil, Member: n.repl.IsMemberIP}
	if open := n.openListeners(); cfg.ProtectedMode && !n.policy.Keyed && !n.policy.Rules() && len(open) > 0 {
		n.policy.Protected = true
		n.log.Warn("protected mode: this node listens beyond loopback with no cluster key and no allow rule, so it answers loopback alone; "+
			"give it --cluster-key-file, allow rules (--allow, --allow-read, --allow-admin, --auto-create) or --protected-mode=no",
			"listening", open)
	}
	q := access.Quota{PerMinute: cfg.CreatesPerMinute, PerSource: cfg.FiltersPerSource,
		Filters: cfg.MaxFilters / 2, Bytes: uint64(cfg.MaxMemory / 2)}
	n.creators = access.NewCreators(q, func(name string) bool { return len(n.reg.Lookup([]byte(name))) > 0 })
}

// openListeners lists the addresses the node listens on beyond loopback.
func (n *Node) openListeners() []string {
	gossip := ""
	if n.cfg.clustered() {
		gossip = n.cfg.gossipListen()
	}
	return hostport.Beyond(n.tr.Addr().String(), n.cfg.RESPListen, gossip)
}

// gossipAllowed is whom memberlist takes gossip from: loopback alone in
// protected mode, else anyone (nil).
func (n *Node) gossipAllowed() []netip.Prefix {
	if !n.policy.Protected {
		return nil
	}
	return []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
}

// IsAdmin reports whether a request from addr is an admin's (loopback,
// --allow-admin, or a member's without a cluster key): what the node's
// HTTP listener asks before serving profiles.
func (n *Node) IsAdmin(addr netip.Addr) bool { return n.policy.IsAdmin(addr, false) }

// Protected reports whether the node is in protected mode: it answers
// loopback alone.
func (n *Node) Protected() bool { return n.policy.Protected }

// errMayNotCreate refuses a create from a client that may not.
var errMayNotCreate = errors.New("this address may not create filters (--auto-create names who may besides admins)")

// createFor creates name sized by s for a client at from (sealed: a
// member's request). An admin's create is bounded by the node's limits
// alone, anyone else's by its quota too; a name that has a filter is
// found, not created, and costs no quota.
func (n *Node) createFor(from netip.Addr, sealed bool, name string, s registry.Sizing) (*registry.Filter, error) {
	if !n.policy.Allows(access.Create, from, sealed) {
		return nil, errMayNotCreate
	}
	if n.policy.IsAdmin(from, sealed) || len(n.reg.Lookup([]byte(name))) > 0 {
		f, _, err := n.create(name, s)
		return f, err
	}
	size, err := n.reg.SizeOf(s)
	if err != nil {
		return nil, err
	}
	if err := n.creators.Reserve(from, name, size, time.Now()); err != nil {
		n.meters.c.Inc(counter.CreatesOverQuota)
		return nil, err
	}
	f, created, err := n.create(name, s)
	n.creators.Done(from, name, created)
	return f, err
}
