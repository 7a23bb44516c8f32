package node_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/rmbd/rmbd/auth"
	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/node"
	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A cluster with a key, on the in-memory network and the bubble's clock.

// memberNames lists the members n sees alive, by name.
func memberNames(n *node.Node) []string {
	var out []string
	for _, m := range n.Members() {
		if m.State == wire.MemberAlive {
			out = append(out, string(m.Name))
		}
	}
	return out
}

// An outsider — no key, or another key — that joins a member's gossip
// port is never a member, and what it pushes changes nothing.
func TestOutsiderIsNeverAMember(t *testing.T) {
	for name, outsiderKey := range map[string]bool{"no key": false, "another key": true} {
		t.Run(name, func(t *testing.T) {
			inBubble(t, func(t *testing.T, tn *testNet) {
				k := testKey(t)
				cfg := keyed(node.DefaultConfig(), k)
				cfg.RejoinInterval = 200 * time.Millisecond
				n1 := tn.member(cfg)
				n2 := tn.member(cfg, n1)
				tn.joined(n1, n2)

				var logs logBook
				outsider := node.DefaultConfig()
				if outsiderKey {
					outsider = keyed(outsider, testKey(t))
				}
				outsider.Logger, outsider.RejoinInterval = logs.logger(), 200*time.Millisecond
				outsider.Peers = []string{n1.Addr().String()} // and it pushes rows at a member
				o := tn.member(outsider, n1)
				keys := makeKeys("outsider-"+name, 1000)
				for _, key := range keys {
					o.Filter().Add(key)
				}
				tn.until("three failed rejoins", 5*time.Second, func() bool { return logs.count("rejoin found nobody") >= 3 }, o, n1, n2)
				assert.Positive(t, n1.Stats().Count(counter.Unauthenticated)+n1.Stats().Count(counter.AuthFailed), "its pushes refused")
				assert.Equal(t, 1, logs.count("join failed"))
				assert.ElementsMatch(t, []string{n1.Name(), n2.Name()}, memberNames(n1))
				assert.ElementsMatch(t, []string{n1.Name(), n2.Name()}, memberNames(n2))
				assert.Equal(t, []string{o.Name()}, memberNames(o), "it sees only itself")
				for _, n := range []*node.Node{n1, n2} {
					assert.Zero(t, falsePositives(n))
					for _, p := range n.Peers() {
						assert.NotEqual(t, o.Addr(), p.Addr, "the outsider is nobody's push target")
					}
					for _, key := range keys {
						require.False(t, n.Filter().Has(key), "%s has the outsider's key %s", n.Name(), key)
					}
				}
			})
		})
	}
}

// A key rotation on a running 3-node cluster, as the README tells it: add
// the new key everywhere, make it first everywhere, remove the old. Adds
// go on throughout; none is lost, and at no moment does a member refuse
// another's frame or gossip.
func TestKeyRotation(t *testing.T) {
	inBubble(t, func(t *testing.T, tn *testNet) {
		oldKey, newKey := testKey(t), testKey(t)
		var logs [3]logBook
		var nodes []*node.Node
		for i := range 3 {
			cfg := keyed(node.DefaultConfig(), oldKey)
			cfg.Logger = logs[i].logger()
			nodes = append(nodes, tn.member(cfg, nodes[:min(i, 1)]...))
		}
		tn.joined(nodes...)
		var added [3][][]byte
		adds := 0
		addSome := func() { // adds on every node, all along
			for i, n := range nodes {
				for range 20 {
					key := fmt.Appendf(nil, "rot-%d-%d", i, adds)
					n.Filter().Add(key)
					added[i] = append(added[i], key)
					adds++
				}
			}
		}
		for _, keys := range [][]auth.Key{{oldKey, newKey}, {newKey, oldKey}, {newKey}} {
			for _, n := range nodes { // one node at a time, as an operator would
				require.NoError(t, n.SetClusterKeys(keys))
				addSome()
				for range 5 { // a second of the cluster's life
					<-time.After(200 * time.Millisecond)
					tn.round(nodes...)
					tn.settle()
				}
			}
		}
		for i, n := range nodes {
			for j := range nodes {
				tn.until(fmt.Sprintf("node %d has node %d's %d keys", i, j, len(added[j])), 10*time.Second,
					func() bool { return hasAll(n, added[j]) }, nodes...)
			}
			st := n.Stats()
			assert.Zero(t, st.Count(counter.AuthFailed), "node %d refused a sealed frame", i)
			assert.Zero(t, st.Count(counter.Unauthenticated), "node %d got an unsealed node frame", i)
			assert.Zero(t, st.Count(counter.Replayed), "node %d", i)
			assert.Zero(t, logs[i].count("could decrypt"), "node %d: gossip refused", i)
			assert.Zero(t, logs[i].count("Failed UDP ping"), "node %d: a probe went unanswered", i)
			assert.Zero(t, logs[i].count("has failed, no acks received"), "node %d suspected a member", i)
			assert.Len(t, memberNames(n), 3)
		}
		// The old key is gone: a node still on it is an outsider now.
		var logsOld logBook
		cfg := keyed(node.DefaultConfig(), oldKey)
		cfg.Logger, cfg.RejoinInterval = logsOld.logger(), 200*time.Millisecond
		old := tn.member(cfg, nodes[0])
		tn.until("its rejoins fail", 5*time.Second, func() bool { return logsOld.count("rejoin found nobody") >= 2 })
		assert.Equal(t, []string{old.Name()}, memberNames(old))
		assert.Len(t, memberNames(nodes[0]), 3)
	})
}
