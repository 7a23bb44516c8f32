// Package placement decides which members of a cluster hold a filter
// when it lives on R of them: the R members ranked highest by a
// rendezvous hash (highest random weight) of the filter's identity and
// the member's name. Every member computes the same owners from what it
// already has — the catalog and the membership — with nothing to agree
// on; and when the membership changes only the filters of the members
// that came or went move: a member that joins a cluster of N−1 takes
// about R/N of all filters, a member that leaves gives up only its own.
//
//	owners := placement.Owners(id, members, 2)
package placement

import (
	"cmp"
	"encoding/binary"
	"slices"

	"github.com/zeebo/xxh3"
)

// Every is the replica count of a filter every member holds.
const Every = 0

// score is the weight of the member whose name hashes to member for the
// filter whose identity hashes to id: the two hashes hashed together, so
// that every pair weighs independently of the others.
func score(id, member uint64) uint64 {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], id)
	binary.LittleEndian.PutUint64(b[8:], member)
	return xxh3.Hash(b[:])
}

// Rank returns members ordered by their weight for the filter id, the
// highest first; ties (of weight, then of name) keep a fixed order. The
// slice given is left as it is.
func Rank(id string, members []string) []string {
	type ranked struct {
		name  string
		score uint64
	}
	rs, hid := make([]ranked, len(members)), xxh3.HashString(id)
	for i, m := range members {
		rs[i] = ranked{m, score(hid, xxh3.HashString(m))}
	}
	slices.SortFunc(rs, func(a, b ranked) int { return cmp.Or(cmp.Compare(b.score, a.score), cmp.Compare(a.name, b.name)) })
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.name
	}
	return out
}

// Owners returns the members that hold the filter id when it lives on
// replicas of them: the first replicas of Rank, or every member when
// replicas is Every or at least their number.
func Owners(id string, members []string, replicas int) []string {
	ranked := Rank(id, members)
	if replicas == Every || replicas >= len(ranked) {
		return ranked
	}
	return ranked[:replicas]
}

// Owns reports whether member is among the owners of the filter id.
func Owns(id string, members []string, replicas int, member string) bool {
	return slices.Contains(Owners(id, members, replicas), member)
}
