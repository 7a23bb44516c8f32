// Package forward relays requests for named filters a member does not
// hold to a member that does, and relays the answers back.
//
// A Forwarder keeps one stream connection per member address, dialed on
// first use and shared by every forward to that member: forwards are
// multiplexed by request id. Do takes the caller's request frame, wraps
// it for the filter's name (wire.AppendNamed) and gives the copy it sends
// a request id of the connection's own — clients' ids collide, the
// connection's never do — registers a waiter under that id, seals the
// frame if the cluster has a key (the Seal hook), and writes it from the
// caller's goroutine under the connection's write lock. One reader
// goroutine per connection reads frames (wire.FrameReader), opens them
// (the Open hook), reads the request id at wire.HeaderSize and hands a
// copy of the frame to the waiter registered under it, which puts the
// caller's id back. The path of a forward thus crosses one goroutine,
// the reader's, and on an open connection allocates nothing: waiters,
// with their channel, timer and write buffers, are pooled.
//
//	f := forward.New(forward.Config{Seal: seal, Open: open})
//	defer f.Close()
//	answer, err := f.Do(ctx, owner, "users", hasBatch, buf[:0])
//
// Everything is bounded. A forward takes at most Timeout (or its
// context's earlier deadline) from dial to answer; at most MaxInFlight
// wait on one member, past which Do answers ErrBusy at once rather than
// queue; a write blocks no longer than the deadline of the forward
// writing. A forward that gives up takes its waiter out of the map, and
// the answer arriving later is dropped and counted (Stats.Dropped), as
// is any answer whose id nobody waits for.
//
// A connection is all or nothing. A read or write error, a frame that
// cannot be framed, opened, or read an id from breaks it: it is closed,
// every forward waiting on it fails with an error naming the member and
// the cause, and the next forward dials again (one dial at a time per
// member; forwards arriving meanwhile wait for it and share its result).
// An answer that is framed but does not decode, or does not answer its
// request, fails that forward alone. Nothing a member sends can make the
// Forwarder panic or hang: the stream is cut into frames by
// wire.FrameReader, which bounds them, and every frame is checked before
// it is sliced. A connection no forward used for IdleTimeout is closed,
// and a member with no connection, dial or forward is forgotten.
//
// Close fails the forwards in flight at once, closes every connection and
// returns when the reader and dial goroutines have ended.
package forward
