// Package filter is rmbd's row-oriented Bloom filter.
//
// A Filter is R rows of W bits. A layout maps a key to bit positions inside
// rows:
//
//   - classic: the original rmbd filter, 5 rows of 400 bits. Row i holds one
//     bit of every key, at FNV-1a-32(key, offset basis i) mod 400.
//   - blocked (the default): rows of 512 bits, one cache line each. A 64-bit
//     xxh3 hash picks one row by multiply-shift and sets k bits inside it, so
//     every Add or Has touches one cache line and every Add dirties one row.
//
// Filters only grow: there is no delete. Two filters with equal fingerprints
// merge by bitwise OR, which is commutative, associative and idempotent, so
// replicas converge whatever order merges arrive in.
//
// Add, Has, MergeRows, CopyRows and Stats are safe to call from many
// goroutines at once: every word of the filter is read and written with
// sync/atomic. Change tracking (Advance, ChangedRuns) belongs to the one
// goroutine that drives replication.
//
//	f, err := filter.New(filter.Config{Layout: filter.Blocked, Capacity: 1_000_000, FPRate: 0.01})
//	if err != nil { ... }
//	f.Add([]byte("alice"))
//	f.Has([]byte("alice")) // true
package filter
