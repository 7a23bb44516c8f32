// Package sim is rmbd's deterministic simulator: whole clusters of the
// real node — registry, gossip, catalog, store — run in one process on
// the in-memory network (internal/memnet, memberlist's transport
// included), on simulated disks (internal/simdisk) and on the fake clock
// of a testing/synctest bubble, through seeded histories of requests and
// faults, and every promise rmbd makes is checked of each history.
//
// One seed draws the whole history (NewPlan): 3 to 9 members, each with
// --fsync always or everysec, keyed or not; a workload of acknowledged
// and unacknowledged adds, has requests, creates and drops of named
// filters, sent as the client sends them, and copies (a named filter
// dumped from one member and loaded into another under a new name, as
// rmbd-cli dump and load do); and up to eight faults:
// partitions (two sides, one member isolated, one deaf), datagrams lost,
// duplicated, reordered and delayed, kill -9 and restart (what was not
// fsynced lost, the last write maybe torn) of one member or of every
// member at once, a member paused past
// memberlist's suspicion timeout, clock steps within MaxSkew, a bit flip
// on a stopped member's disk, a member joining with another default
// sizing, and a cluster key rotation.
//
// Run checks, during the history and after every fault heals:
//
//   - read your writes: a member answers present every key it
//     acknowledged, unless it was allowed to lose it;
//   - lost = 0: every key acknowledged is present on every replica after
//     the heal, except those an everysec member acknowledged within its
//     flush interval before a crash, and those whose only copy was on a
//     corrupted disk (both counted and reported); a copy's keys are those
//     its source held when dumped, acknowledged by the member that loaded
//     it (whose loaded rows reach its disk at a checkpoint, under
//     --fsync always before the load is answered);
//   - durability: a member restarted after a crash holds, from its disk
//     alone, every key it acknowledged and logged (under everysec, but
//     those within its flush interval), and every create and drop it
//     acknowledged;
//   - convergence: within convergeWithin of the last fault's heal or the
//     last request, every member holds the same catalog and every replica
//     of every filter is bitwise equal;
//   - quiet when idle: once converged, and once the rounds in flight are
//     done (settleFor), the cluster sends no row bytes for idleFor;
//   - tombstones: a dropped filter is gone everywhere, never lives again
//     where its drop was seen, and a created one is everywhere;
//   - answers: no error answer a fault does not explain;
//   - the false-positive rate of every filter is at most 1.25 × its
//     target (the workload never puts more keys in a filter than its
//     capacity);
//   - bounds: filter memory and connection buffers stay under their
//     limits, and no member has more peers than there are other members.
//
// One seed in five draws a windowed history instead (PlanFor,
// NewWindowPlan, window.go): one windowed filter, keys added through
// every member at a steady rate, clocks within WindowSkew of true time,
// under message loss, members cut off and killed; its own checks (read
// your writes, every key of the window on every member, keys forgotten
// once out of it, slices and bytes within bounds) run every second and
// once healed.
//
// Another seed in five draws a placement history (NewPlacementPlan,
// placement.go): 4 to 6 members under --fsync always, 6 to 20 filters
// each placed on 2 members (some on 3), a write quorum of 1 or of every
// owner, keys added through members drawn at random (most adds are
// forwarded to the owners), under kill -9 and restart, a member cut off,
// a member joining, a member leaving for good, and a lossy network. Its
// checks (placecheck.go): read your writes while the cluster is stable,
// every owner holding every key acknowledged while it was, no filter
// kept past the handoff grace, and once healed every filter on exactly
// its owners, filled, each owner holding every key, every member
// answering every key (lost = 0), no folder of a filter a member does not
// own, and the false-positive rate.
//
// A failing history is shrunk (Shrink) to the fewest faults that still
// fail, and replays from its seed:
//
//	go test ./sim -run 'TestSim$' -sim.seed=N [-sim.keep=0,3] -v
//
// The seed decides every request, fault and its moment, and every choice
// of the network and the disks; memberlist's own random choices and the
// order goroutines run in within a tick are not the seed's, so a replay
// runs the same history, not always the same interleaving of it.
package sim
