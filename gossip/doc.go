// Package gossip decides, round by round, which sync frames go to which
// peer. It is a pure state machine in the style of etcd's raft: the node
// calls Tick once per sync interval and hands in the acks it receives;
// both append the frames to send, addressed, to an Outbox, which the node
// sends after letting go of the lock that serialises the Gossip. Time is
// counted in ticks, so whole clusters run in tests without sleeping. Only
// the node owns tickers and sockets.
//
// Two modes:
//
//   - classic: every tick, every row to every peer in classic sync frames,
//     as the original rmbd does. Any ack (the single byte 0x04) from a peer
//     keeps it; a peer that has not acked for PruneAfter rounds is removed.
//   - delta (the default profile): each peer gets only the rows changed
//     since it last acknowledged them, found through the filter's change
//     stamps and packed into row sync frames of at most MaxFrame bytes.
//     A member gets only what this node originated (its own adds, and rows
//     from outside the cluster: filter/origin.go), every member with news
//     a round each tick: it hears rows merged from another member from
//     that member, so each row reaches each member about once. Static
//     peers get every change — rows a node merges spread onward to them —
//     at most Fanout of them starting a round each tick, chosen from a
//     random place in the peer list. A frame not acknowledged within
//     AckTimeout ticks is sent again; rows in flight per peer (the window,
//     window.go) and bytes per tick are bounded.
//
// Push targets are static peers (RequestPeer: directed edges that get
// nothing but a challenge until they answer it — Answer — then every row
// ever set, pruned when they stop acking; challenge.go) or cluster members
// (AddMember/RemoveMember: membership decides; a new or returning member
// gets changes from now on, what it missed coming by anti-entropy). A node keeps one
// Gossip per segment of every filter it replicates. The Catalog of named
// filters, a CRDT of creations and tombstones, is here too. Anti-entropy
// (Digests, Differing, ServePull) repairs whatever pushes missed: nodes
// compare checksums of blocks of rows and pull the blocks that differ.
// MergeRowSync and MergeClassicSync are the receiving side.
//
// A Gossip is not safe for concurrent use: its owner serialises calls.
package gossip
