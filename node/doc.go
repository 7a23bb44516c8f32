// Package node is the rmbd daemon: it binds UDP and TCP on one address,
// answers add/has/sync/peer frames from the filter, and runs the gossip
// ticker that pushes rows to peers.
//
// A Node ties the pure packages together and is the only place that owns
// tickers and a Transport (UDP and TCP sockets, or an in-memory network in
// tests):
//
//	datagram or stream → wire decode → dispatch → filter → reply
//	ticker → gossip.Tick (under the gossip lock) → outbox → send (after it)
//
// Every reply and every sync push leaves from the listening address, so a
// peer's acks come back to the address it was told about. Bad frames are
// counted and dropped without a reply. Cluster membership (package
// membership) reaches the node only through membership.Host. With
// Config.DataDir the filter lives in a data directory (package store):
// adds are logged before they are applied, and an acknowledged add under
// --fsync always is answered once its record is on disk.
//
//	cfg := node.DefaultConfig()
//	cfg.Listen = "127.0.0.1:8000"
//	n, err := node.New(cfg)
//	if err != nil { ... }
//	err = n.Run(ctx) // until ctx is cancelled
package node
