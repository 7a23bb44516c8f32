// Package gossip decides, round by round, which sync frames go to which
// peer. It is a pure state machine in the style of etcd's raft: the node
// calls Tick once per sync interval and hands in the acks it receives;
// Tick emits frames. Time is counted in ticks, so whole clusters run in
// tests without sleeping. Only the node owns tickers and sockets.
//
// Two modes:
//
//   - classic: every tick, every row to every peer in classic sync frames,
//     as the original rmbd does. Any ack (the single byte 0x04) from a peer
//     keeps it; a peer that has not acked for PruneAfter rounds is removed.
//   - delta (the default profile): each peer gets only the rows changed
//     since it last acknowledged them, found through the filter's change
//     stamps, packed into row sync frames of at most MaxFrame bytes. A new
//     peer first gets every row that was ever set. A round is complete when
//     every frame of it is acknowledged; a round left incomplete at the next
//     tick counts as a missed round and is sent again, from the last
//     complete round on.
//
// A Gossip is not safe for concurrent use: its owner serialises calls.
package gossip
