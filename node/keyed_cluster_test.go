package node

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmbd/rmbd/auth"
	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Clusters with a key, over real loopback sockets and a real memberlist.

// logBook keeps a node's log lines for a test to look for.
type logBook struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBook) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// count returns the lines holding s.
func (l *logBook) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

func (l *logBook) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// memberNames lists the members n sees alive, by name.
func memberNames(t *testing.T, n *Node) []string {
	var out []string
	for _, m := range realMembers(t, n) {
		if m.State == wire.MemberAlive {
			out = append(out, string(m.Name))
		}
	}
	return out
}

// An outsider — no key, or another key — that joins a member's gossip
// port is never a member, and what it pushes changes nothing.
func TestOutsiderIsNeverAMember(t *testing.T) {
	k := testKey(t)
	cfg := keyed(quickLeave(), k)
	n1, _ := startMember(t, cfg)
	n2, _ := startMember(t, cfg, n1.GossipAddr())
	waitFor(t, "two members", func() bool { return len(n1.Peers()) == 1 && len(n2.Peers()) == 1 })

	for name, outsider := range map[string]Config{"no key": quickLeave(), "another key": keyed(quickLeave(), testKey(t))} {
		t.Run(name, func(t *testing.T) {
			var logs logBook
			outsider.Logger = logs.logger()
			outsider.Peers = []string{n1.Addr().String()} // and it pushes rows at a member
			o, _ := startMember(t, outsider, n1.GossipAddr())
			keys := makeKeys("outsider-"+name, 1000)
			for _, key := range keys {
				o.Filter().Add(key)
			}
			refusedBefore := n1.Stats().Count(Unauthenticated) + n1.Stats().Count(AuthFailed)
			// Its join fails, and its rejoins, every 200 ms, find nobody.
			waitFor(t, "three failed rejoins", func() bool { return logs.count("rejoin found nobody") >= 3 })
			waitFor(t, "its challenges answered and its pushes refused", func() bool {
				return n1.Stats().Count(Unauthenticated)+n1.Stats().Count(AuthFailed) > refusedBefore
			})
			assert.Equal(t, 1, logs.count("join failed"))
			assert.ElementsMatch(t, []string{n1.Name(), n2.Name()}, memberNames(t, n1))
			assert.ElementsMatch(t, []string{n1.Name(), n2.Name()}, memberNames(t, n2))
			assert.Equal(t, []string{o.Name()}, memberNames(t, o), "it sees only itself")
			for _, n := range []*Node{n1, n2} {
				assert.Zero(t, falsePositives(n))
				for _, p := range n.Peers() {
					assert.NotEqual(t, o.Addr(), p.Addr, "the outsider is nobody's push target")
				}
				for _, key := range keys {
					if n.Filter().Has(key) {
						t.Fatalf("%s has the outsider's key %s", n.Name(), key)
					}
				}
			}
		})
	}
}

// A key rotation on a running 3-node cluster, as the README tells it:
// add the new key everywhere, make it first everywhere, remove the old.
// Adds go on throughout; none is lost, and at no moment does a member
// refuse another's frame or gossip.
func TestKeyRotation(t *testing.T) {
	oldKey, newKey := testKey(t), testKey(t)
	var logs [3]logBook
	var nodes [3]*Node
	for i := range nodes {
		cfg := keyed(quickLeave(), oldKey)
		cfg.Logger = logs[i].logger()
		var join []string
		if i > 0 {
			join = []string{nodes[0].GossipAddr()}
		}
		nodes[i], _ = startMember(t, cfg, join...)
	}
	waitFor(t, "three members", func() bool {
		for _, n := range nodes {
			if len(n.Peers()) != 2 {
				return false
			}
		}
		return true
	})

	ctx, cancel := context.WithCancel(context.Background())
	var added [3][][]byte
	var wg sync.WaitGroup
	var rounds atomic.Int64
	for i, n := range nodes { // adds on every node, all along
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; ctx.Err() == nil; j++ {
				key := fmt.Appendf(nil, "rot-%d-%d", i, j)
				n.Filter().Add(key)
				added[i] = append(added[i], key)
				rounds.Add(1)
				time.Sleep(time.Millisecond)
			}
		}()
	}
	steps := [][]auth.Key{{oldKey, newKey}, {newKey, oldKey}, {newKey}}
	for _, keys := range steps {
		for _, n := range nodes { // one node at a time, as an operator would
			require.NoError(t, n.SetClusterKeys(keys))
			before := rounds.Load()
			waitFor(t, "adds meanwhile", func() bool { return rounds.Load() > before+20 })
		}
	}
	cancel()
	wg.Wait()

	for i, n := range nodes {
		for j := range nodes {
			keys := added[j]
			waitFor(t, fmt.Sprintf("node %d has node %d's %d keys", i, j, len(keys)), func() bool { return hasAll(n, keys) })
		}
		st := n.Stats()
		assert.Zero(t, st.Count(AuthFailed), "node %d refused a sealed frame", i)
		assert.Zero(t, st.Count(Unauthenticated), "node %d got an unsealed node frame", i)
		assert.Zero(t, st.Count(Replayed), "node %d", i)
		assert.Zero(t, logs[i].count("could decrypt"), "node %d: gossip refused", i)
		assert.Zero(t, logs[i].count("Failed UDP ping"), "node %d: a probe went unanswered", i)
		assert.Zero(t, logs[i].count("has failed, no acks received"), "node %d suspected a member", i)
		assert.Len(t, memberNames(t, n), 3)
	}
	// The old key is gone: a node still on it is an outsider now.
	var logsOld logBook
	cfg := keyed(quickLeave(), oldKey)
	cfg.Logger = logsOld.logger()
	old, _ := startMember(t, cfg, nodes[0].GossipAddr())
	waitFor(t, "its rejoins fail", func() bool { return logsOld.count("rejoin found nobody") >= 2 })
	assert.Equal(t, []string{old.Name()}, memberNames(t, old))
	assert.Len(t, memberNames(t, nodes[0]), 3)
}
