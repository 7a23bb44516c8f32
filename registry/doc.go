// Package registry holds every filter of a node by name: the filter the
// node's flags make, under the reserved name "default", and the named
// filters of the cluster's catalog, each as one Filter per live version.
// It owns the catalog (gossip.Catalog), the memory budget (MaxFilters,
// MaxMemory), the filters' folders in the data directory and their
// restore at start.
//
// A Filter is an ordered list of segments, each a row-oriented filter
// with its own identity, change tracking, files and sync state: gossip
// rounds, acks, digests, pulls, the log and checkpoints all work on a
// segment. A plain filter has one segment, numbered 0; filters that grow
// or keep a window of time will add segments, never code paths.
//
// Reading is lock-free: Lookup is one atomic load and one map lookup, and
// what it returns stays valid (a dropped filter's memory goes with the
// last request that holds it). Changing takes two steps, as gossip's
// Outbox does for sends: a mutation (Create, Drop, Merge, Expire) decides
// under the registry's lock and returns a Plan; Apply carries the plan
// out — writes the catalog, opens and loads filters, closes and removes
// them — holding no lock a reader or a memberlist callback waits on, and
// then publishes what it opened.
//
// Adds come in two kinds: Filter.Add for adds the caller acknowledges,
// refused while the filter's data directory cannot be written (a full
// disk), and Filter.AddUnacked for the others, which go on in memory
// meanwhile. Unwritable lists the filters refusing adds; each store
// retries on its own (registry.Start) and takes them again once it can.
//
//	reg, err := registry.Open(cfg) // restores every filter the directory holds
//	if err != nil { ... }
//	defer reg.Close()
//	plan, err := reg.Create("users", sizing)
//	if err != nil { ... }
//	res := reg.Apply(plan) // outside any lock; res.Filter is "users"
//	vs := reg.Lookup([]byte("users"))
//	vs.Winner().Add(keys, bits, &scratch)
package registry
