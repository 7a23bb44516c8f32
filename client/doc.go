// Package client talks to rmbd nodes.
//
//	c, err := client.Dial(ctx, "127.0.0.1:8000")
//	if err != nil { ... }
//	defer c.Close()
//	err = c.Add(ctx, "alice", "bob")
//	present, err := c.Has(ctx, "alice", "carol") // [true false]
//
// Keys travel in batched extended frames sized to the transport: UDP
// datagrams of at most 1,400 bytes (WithMaxDatagram), or pipelined frames
// on one TCP connection (WithTCP). A Client is safe for concurrent use.
//
// Over UDP a request whose reply does not come is sent again, with growing
// pauses, until the context ends. That is always safe: adding a key twice
// or asking twice changes nothing, because a Bloom filter only grows.
// Without a deadline on the context, each call is bounded by WithTimeout.
//
// WithClassic speaks only the original rmbd's frames, to talk to the Python
// rmbd: one key per frame, keys of at most 139 bytes (longer ones are
// refused with ErrKeyTooLong, never truncated), and adds that nobody
// acknowledges — over UDP a lost classic add goes unnoticed, as it always
// did with the original.
//
// A filter placed on some members of a cluster (CreatePlacedFilter)
// answers through any member, which forwards its keys to the members
// that hold it. A Cluster saves that hop: given any member, it learns
// where each filter lives and sends the keys there itself.
//
//	cl, err := client.NewCluster(ctx, "10.0.0.1:8000")
//	...
//	err = cl.Filter("sessions").Add(ctx, "s-1")
//
// Errors are typed: *OpError carries the operation and the node's address
// and wraps ErrUnreachable, ErrTimeout, ErrClosed, a *ServerError or a
// transport error; ErrKeyTooLong is returned before anything is sent.
package client
