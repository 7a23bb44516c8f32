package node

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/rmbd/rmbd/filter"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// has reports whether every key is in some live version of name on n.
func namedHasAll(n *Node, name string, keys []string) bool {
	vs := n.named.lookup([]byte(name))
	if len(vs) == 0 {
		return false
	}
	for _, k := range keys {
		found := false
		for _, nf := range vs {
			found = found || nf.f.Has([]byte(k))
		}
		if !found {
			return false
		}
	}
	return true
}

// Three members, filters created on each, keys added on random members:
// every filter reaches every member, with every key; a drop reaches them
// all; with and without a cluster key.
func TestNamedFiltersReplicate(t *testing.T) {
	for _, withKey := range []bool{false, true} {
		t.Run(map[bool]string{false: "open", true: "keyed"}[withKey], func(t *testing.T) {
			cfg := quickLeave()
			if withKey {
				cfg = keyed(cfg, testKey(t))
			}
			a, _ := startMember(t, cfg)
			b, _ := startMember(t, cfg, a.GossipAddr())
			c, _ := startMember(t, cfg, a.GossipAddr())
			ns := []*Node{a, b, c}
			waitFor(t, "three members", func() bool { return len(a.Members()) == 3 && len(c.Members()) == 3 })

			const filters, perFilter = 12, 200
			rng := rand.New(rand.NewPCG(1, 2))
			keys := map[string][]string{}
			for i := range filters {
				name := fmt.Sprint("tenant-", i)
				_, err := ns[i%3].createNamed(name, filter.Blocked, 5000, 0.01)
				require.NoError(t, err)
				for j := range perFilter {
					keys[name] = append(keys[name], fmt.Sprint(name, "/key-", j))
				}
			}
			for name, ks := range keys {
				waitFor(t, name+" everywhere", func() bool {
					for _, n := range ns {
						if len(n.named.lookup([]byte(name))) == 0 {
							return false
						}
					}
					return true
				})
				for _, k := range ks {
					nf, err := ns[rng.IntN(3)].namedFor([]byte(name))
					require.NoError(t, err)
					require.True(t, nf.f.Add([]byte(k)) || nf.f.Has([]byte(k)))
				}
			}
			for name, ks := range keys {
				waitFor(t, "every key of "+name+" on every member", func() bool {
					for _, n := range ns {
						if !namedHasAll(n, name, ks) {
							return false
						}
					}
					return true
				})
			}
			// Each filter holds only its own keys: other filters' keys answer
			// true no more often than the sizing promises.
			fp, asked := 0, 0
			for name := range keys {
				for other, ks := range keys {
					if other == name {
						continue
					}
					for _, k := range ks {
						asked++
						if namedHasAll(b, name, []string{k}) {
							fp++
						}
					}
				}
			}
			assert.LessOrEqual(t, float64(fp)/float64(asked), 0.01, "%d of %d", fp, asked)

			require.NoError(t, c.dropNamed("tenant-0"))
			waitFor(t, "the drop everywhere", func() bool {
				for _, n := range ns {
					if len(n.named.lookup([]byte("tenant-0"))) > 0 {
						return false
					}
				}
				return true
			})
			// Created again, empty everywhere: the old rows never come back.
			_, err := a.createNamed("tenant-0", filter.Blocked, 5000, 0.01)
			require.NoError(t, err)
			waitFor(t, "generation 2 everywhere", func() bool {
				for _, n := range ns {
					vs := n.named.lookup([]byte("tenant-0"))
					if len(vs) != 1 || vs[0].v.Gen != 2 {
						return false
					}
				}
				return true
			})
			ticks := a.Stats().Ticks
			waitFor(t, "twenty more rounds", func() bool { return a.Stats().Ticks >= ticks+20 })
			for _, n := range ns {
				assert.False(t, namedHasAll(n, "tenant-0", keys["tenant-0"][:1]), "%s: a dropped key came back", n.Name())
			}
		})
	}
}

// A member that joins late gets every named filter and its keys.
func TestNamedFiltersFillAJoiner(t *testing.T) {
	cfg := quickLeave()
	a, _ := startMember(t, cfg)
	_, err := a.createNamed("early", filter.Blocked, 5000, 0.01)
	require.NoError(t, err)
	nf, _ := a.namedFor([]byte("early"))
	var ks []string
	for i := range 500 {
		ks = append(ks, fmt.Sprint("e", i))
		nf.f.Add([]byte(ks[i]))
	}
	b, _ := startMember(t, cfg, a.GossipAddr())
	deadline := time.Now().Add(20 * time.Second)
	for !namedHasAll(b, "early", ks) {
		if time.Now().After(deadline) {
			anf, _ := a.namedFor([]byte("early"))
			a.mu.Lock()
			peers := anf.g.Peers()
			a.mu.Unlock()
			t.Fatalf("the joiner never got the filter's keys: b holds %d versions; a's pushes to %+v; a's members %d",
				len(b.named.lookup([]byte("early"))), peers, len(a.Members()))
		}
		time.Sleep(5 * time.Millisecond)
	}
}
