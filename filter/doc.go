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
// Every method is safe to call from many goroutines at once. Has,
// CopyRows and Stats read each word of the filter with sync/atomic,
// without a lock. Add and MergeRows write words under the lock of their
// stripe of 256 rows, with plain loads and stores: one lock covers a key's
// bits or up to 16 merged rows, where an atomic OR per word cost a locked
// instruction per 8 bytes (write.go). Change tracking (Advance,
// ChangedRuns, Generation, LastChanged) takes a mutex of its own, so the
// gossip ticker and anti-entropy pulls served from TCP goroutines may use
// it together.
//
// The bits are a plain slice of words rather than a bitset.BitSet: each
// word is read atomically and written under a lock, rows are aligned to
// cache lines, and a row is located by arithmetic on its index, none of
// which a BitSet offers; its methods are not safe against concurrent
// writers. Sets of
// rows that replication works with (blocks that differ, rows to pull) are
// BitSets.
//
//	f, err := filter.New(filter.Config{Layout: filter.Blocked, Capacity: 1_000_000, FPRate: 0.01})
//	if err != nil { ... }
//	f.Add([]byte("alice"))
//	f.Has([]byte("alice")) // true
package filter
