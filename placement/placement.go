// Package placement decides which members of a cluster hold a filter
// when it lives on R of them: the R members ranked highest by a
// rendezvous hash (highest random weight) of the filter's name and the
// member's name, with the members' loads bounded (Assign): a member over
// 1.15 × the mean gives its newest filters to the next members in rank.
// Every member computes the same owners from what it already has — the
// catalog and the membership — with nothing to agree on; and when the
// membership changes mostly the filters of the members that came or went
// move: a member that joins a cluster of N−1 takes about R/N of all
// filters, a member that leaves gives up its own (and a few more move as
// the loads settle).
//
//	placed := placement.Assign(filters, members, placement.DefaultBound)
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

// Owners returns the members ranked highest for the filter id, replicas
// of them by rank alone — or every member when replicas is Every or at
// least their number. Assign, which members place filters with, starts
// from it and bounds the loads.
func Owners(id string, members []string, replicas int) []string {
	ranked := Rank(id, members)
	if replicas == Every || replicas >= len(ranked) {
		return ranked
	}
	return ranked[:replicas]
}

// Filter is a placed filter as Assign sees it.
type Filter struct {
	Name     string
	Bytes    uint64 // what a replica of it takes
	Replicas int
}

// DefaultBound is the load Assign lets a member take, as a share of the
// mean: 15 % over it. Over 6 members and 60 filters of 2 replicas, a
// tighter bound moves more filters at each change of members (1.1: a
// member joining moves 16 % of the bytes, one leaving 1.12 × its own);
// this one, 15.6 % and 1.07 × (go test -run Assign -v ./placement).
const DefaultBound = 1.15

// Assign places filters on members with bounded loads. Each filter goes
// to the replicas members ranked highest for it, as Owners says; then,
// from the newest filter to the oldest (filters are given oldest first),
// an owner whose load is over bound × the mean gives that filter up to
// the highest ranked member that has room for it, until it is within the
// bound. So the filters that move off a full member are the last made,
// and a change of members moves about what ranking alone would, plus the
// few filters whose member's overflow changed. Rendezvous ranking alone
// leaves the fullest of six members about 25 % over the mean for 60
// filters; with the bound a cluster holds filters up to about 1/bound of
// its members' memory. A filter made moves about a third of its size of
// others (the newest of the members it fills). For each filter it returns every member, its
// owners first (in rank), then the others in rank — the order to ask
// them in. Every member computes the same from the same catalog and
// membership.
func Assign(filters []Filter, members []string, bound float64) [][]string {
	n := len(filters)
	ranked, owners := make([][]string, n), make([][]string, n)
	load := make(map[string]uint64, len(members))
	var total float64
	for i, f := range filters {
		ranked[i] = Rank(f.Name, members)
		r := f.Replicas
		if r == Every || r > len(ranked[i]) {
			r = len(ranked[i])
		}
		owners[i] = slices.Clone(ranked[i][:r])
		for _, m := range owners[i] {
			load[m] += f.Bytes
		}
		total += float64(f.Bytes) * float64(r)
	}
	limit := uint64(bound * total / float64(max(len(members), 1)))
	for i := n - 1; i >= 0; i-- {
		f := filters[i]
		for j, m := range owners[i] {
			if load[m] <= limit {
				continue
			}
			for _, to := range ranked[i] {
				if !slices.Contains(owners[i], to) && load[to]+f.Bytes <= limit {
					owners[i][j] = to
					load[m] -= f.Bytes
					load[to] += f.Bytes
					break
				}
			}
		}
	}
	out := make([][]string, n)
	for i := range filters {
		own := owners[i]
		slices.SortStableFunc(own, func(a, b string) int { return slices.Index(ranked[i], a) - slices.Index(ranked[i], b) })
		out[i] = append(own, slices.DeleteFunc(slices.Clone(ranked[i]), func(m string) bool { return slices.Contains(own, m) })...)
	}
	return out
}
