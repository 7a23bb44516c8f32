// Package node is the rmbd daemon: a thin shell that binds the sockets
// (or runs on an in-memory network), serves frames from them, and ties
// the packages that do the work together:
//
//	registry/   every filter by name, the default one included: the
//	            catalog, the memory budget, folders, restore at start
//	replicate/  one replication path: a gossip round per segment, to
//	            members and (the default filter) static peers
//	respserver/ the Redis protocol, over the same filters and bounds
//	access/     who may do what, for every protocol
//	membership/ the cluster, through memberlist
//
// A frame from a datagram or a stream — sealed or not, named or not — is
// served by one table from frame type to handler (dispatch.go); a handler
// returns its reply as a value (a frame, what it waits for on disk, a
// hang-up, or a stream answering a pull) and the datagram and stream
// loops decide how it leaves:
//
//	datagram or stream → dispatch → handler → registry → filter → reply
//	ticker → replicate.Tick → gossip decides (under its lock) → sendOut (after it)
//
// Every reply and every push leaves from the listening address, so a
// peer's acks come back to the address it was told about. Bad frames are
// counted and dropped, or answered with an error frame when they are
// requests. Memberlist's callbacks never wait: catalog changes are queued
// for the catalog loop, repairs run in the background; creating and
// dropping filters applies the registry's plans outside any lock a reader
// or a callback waits on. With Config.DataDir every filter lives in the
// data directory (package store): adds are logged before they are
// applied, and an acknowledged add under --fsync always is answered once
// its record is on disk.
//
// Time: a ticker runs the gossip rounds, unless Config.ManualTicks leaves
// them to Node.Tick (tests and simulators, which also give
// Config.Transport and Config.GossipTransport an in-memory network).
//
//	cfg := node.DefaultConfig()
//	cfg.Listen = "127.0.0.1:8000"
//	n, err := node.New(cfg)
//	if err != nil { ... }
//	err = n.Run(ctx) // until ctx is cancelled
package node
