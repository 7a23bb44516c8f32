// Package counter names a node's counters: what stats frames, metrics
// and rmbd-cli stats call each, and what it counts (docs/STATS.md).
package counter

import (
	"fmt"
	"sync/atomic"
)

// Counter names one of the node's own counts.
type Counter int

// Counters. Dropped counts every frame dropped without being served; the
// counters after it say why.
const (
	UDPFrames           Counter = iota // datagrams received
	TCPFrames                          // frames received over TCP
	TCPConns                           // TCP connections accepted
	TCPRefusedPerSource                // TCP connections refused: their source holds --max-conns-per-source
	TCPEvicted                         // TCP connections closed, idle longest, to let a new one in (--max-conns)
	TCPIdleTimeouts                    // TCP connections closed: nothing sent for --idle-timeout
	TCPFrameTimeouts                   // TCP connections closed: a frame begun and not finished within --frame-timeout
	TCPNoMemory                        // TCP connections closed: their frame needed memory past --max-buffer-bytes
	Adds                               // keys added
	AddsNew                            // keys that set at least one new bit
	AddsUnkept                         // acknowledged add requests refused: the data directory could not be written
	HasQueries                         // keys asked for
	HasHits                            // keys answered present
	SyncFramesMerged                   // sync frames merged (classic and row sync)
	SyncRowsMerged                     // rows in them
	SyncRowsChanged                    // rows that gained bits
	PeerFrames                         // peer requests
	SelfPeers                          // peer requests naming this node
	Unresolved                         // peer hosts that did not resolve
	SendErrors                         // replies and pushes the socket refused
	PullsServed                        // pulls answered over TCP
	AntiEntropyPulls                   // pulls made to repair or fill the filter
	AntiEntropyRows                    // rows those pulls changed
	MemberMismatch                     // members seen with another fingerprint
	MemberBadMeta                      // member updates with unreadable metadata (another protocol version)
	MemberBadState                     // push/pull states refused
	PullsFailed                        // anti-entropy pulls that failed
	ForcedShutdowns                    // shutdowns that had to close connections
	ChallengesSent                     // challenges sent to addresses named as peers
	PeersVerified                      // peers that answered their challenge
	StrayAnswers                       // challenge answers nobody was sent, or wrong
	UDPRepliesCut                      // replies larger than their request, not sent over UDP
	PullsBusy                          // pulls refused: too many served at once
	CreatesOverQuota                   // creates refused: the client, not an admin, is over its quota
	Dropped                            // frames dropped, for any reason below
	BadFrames                          // did not decode
	FingerprintMismatch                // sync of another filter
	RowRange                           // sync of rows the filter lacks
	Unsupported                        // a frame type the node does not serve
	Unauthenticated                    // a node-to-node frame unsealed, to a node with a cluster key
	AuthFailed                         // sealed with a key the node lacks, or a tag that does not verify
	Replayed                           // sealed frames seen before, or too old
	WrongReceiver                      // sealed frames for another node, or for this one before a restart (a hint goes back)
	Forbidden                          // requests from addresses not allowed (--allow, --allow-read, --allow-admin)
	ProtectedRefused                   // requests from beyond loopback to a node in protected mode
	UDPShed                            // datagrams dropped unanswered, from a source over its share while the node was behind
	UDPBlocked                         // times a flooding source was blocked: the kernel dropped its datagrams for a while
	RESPConns                          // RESP (Redis protocol) connections accepted
	RESPCommands                       // RESP commands served
	RESPErrors                         // RESP commands answered with an error
	RESPProtocolErrors                 // RESP connections closed: bytes that are not a command, or past its limits
	RESPAuthFailures                   // RESP wrong passwords (AUTH, HELLO AUTH); the third on a connection closes it
	RESPAuthDelayed                    // RESP AUTH attempts made to wait: their source gave wrong passwords before
	RESPAuthRefused                    // RESP AUTH attempts refused unchecked: their source failed too often of late
	CatalogDropped                     // catalog changes from members dropped: the queue was full (the next push/pull brings them)
	MemberBadClock                     // pings whose ack carried a clock that does not decode
	Forwards                           // requests for placed filters sent on to their owners
	ForwardsFailed                     // of those, requests no owner served (the client got an error)
	ForwardsNotHere                    // forwarded requests refused: the filter is not held here (yet)
	FillsDone                          // placed filters filled from a member that held them, after a change of members
	FillBytes                          // bytes of rows those fills received (rebalancing)
	FillsFailed                        // fill attempts that reached no member holding the filter (tried again)
	Num                                // how many there are
)

// info names each counter, as stats frames and metrics carry it,
// and says what it counts.
var info = [Num]struct{ name, help string }{
	{"udp_frames", "Datagrams received."},
	{"tcp_frames", "Frames received over TCP."},
	{"tcp_conns", "TCP connections accepted."},
	{"tcp_refused_per_source", "TCP connections refused: their source holds --max-conns-per-source."},
	{"tcp_evicted_idle", "TCP connections closed, idle longest, to let a new one in (--max-conns)."},
	{"tcp_idle_timeouts", "TCP connections closed: nothing sent for --idle-timeout."},
	{"tcp_frame_timeouts", "TCP connections closed: a frame begun and not finished within --frame-timeout."},
	{"tcp_closed_no_memory", "TCP connections closed: their frame needed memory past --max-buffer-bytes."},
	{"adds", "Keys added."},
	{"adds_new", "Keys that set at least one new bit."},
	{"adds_unkept", "Acknowledged add requests refused: the data directory could not be written."},
	{"has_queries", "Keys asked for."},
	{"has_hits", "Keys answered present."},
	{"sync_frames_merged", "Sync frames merged (classic and row sync)."},
	{"sync_rows_merged", "Rows in them."},
	{"sync_rows_changed", "Rows that gained bits."},
	{"peer_frames", "Peer requests."},
	{"self_peers", "Peer requests naming this node."},
	{"unresolved_peers", "Peer hosts that did not resolve."},
	{"send_errors", "Replies and pushes the socket refused."},
	{"pulls_served", "Pulls answered over TCP."},
	{"anti_entropy_pulls", "Pulls made to repair or fill the filter."},
	{"anti_entropy_rows", "Rows those pulls changed."},
	{"member_fingerprint_mismatch", "Members seen with another fingerprint."},
	{"member_bad_metadata", "Member updates with unreadable metadata (another protocol version)."},
	{"member_bad_state", "Push/pull states refused."},
	{"anti_entropy_pulls_failed", "Anti-entropy pulls that failed."},
	{"forced_shutdowns", "Shutdowns that had to close connections."},
	{"challenges_sent", "Challenges sent to addresses named as peers."},
	{"peers_verified", "Peers that answered their challenge."},
	{"stray_challenge_answers", "Challenge answers nobody was sent, or wrong."},
	{"udp_replies_cut", "Replies larger than their request, not sent over UDP."},
	{"pulls_busy", "Pulls refused: too many served at once."},
	{"creates_over_quota", "Creates refused: the client, not an admin, is over its quota (--creates-per-minute, --filters-per-source)."},
	{"dropped", "Frames dropped, for any reason below."},
	{"bad_frames", "Did not decode."},
	{"fingerprint_mismatch", "Sync of another filter."},
	{"row_range", "Sync of rows the filter lacks."},
	{"unsupported", "A frame type the node does not serve."},
	{"unauthenticated", "A node-to-node frame unsealed, to a node with a cluster key."},
	{"auth_failed", "Sealed with a key the node lacks, or a tag that does not verify."},
	{"replayed", "Sealed frames seen before, or too old."},
	{"wrong_receiver", "Sealed frames for another node, or for this one before a restart (a hint goes back)."},
	{"forbidden", "Requests from addresses not allowed (--allow, --allow-read, --allow-admin)."},
	{"protected_refused", "Requests from beyond loopback to a node in protected mode."},
	{"udp_shed", "Datagrams dropped unanswered, from a source over its share while the node was behind."},
	{"udp_blocks", "Times a flooding source was blocked: the kernel dropped its datagrams for a while."},
	{"resp_conns", "RESP (Redis protocol) connections accepted."},
	{"resp_commands", "RESP commands served."},
	{"resp_errors", "RESP commands answered with an error."},
	{"resp_protocol_errors", "RESP connections closed: bytes that are not a command, or past its limits."},
	{"resp_auth_failures", "RESP wrong passwords (AUTH, HELLO AUTH); the third on a connection closes it."},
	{"resp_auth_delayed", "RESP AUTH attempts made to wait: their source gave wrong passwords before."},
	{"resp_auth_refused", "RESP AUTH attempts refused unchecked: their source failed too often of late."},
	{"catalog_dropped", "Catalog changes from members dropped: the queue was full (the next push/pull brings them)."},
	{"member_bad_clock", "Pings whose ack carried a clock that does not decode."},
	{"forwards", "Requests for placed filters sent on to their owners."},
	{"forwards_failed", "Of those, requests no owner served (the client got an error)."},
	{"forwards_not_here", "Forwarded requests refused: the filter is not held here (yet)."},
	{"fills", "Placed filters filled from a member that held them, after a change of members."},
	{"fill_bytes", "Bytes of rows those fills received (rebalancing)."},
	{"fills_failed", "Fill attempts that reached no member holding the filter (tried again)."},
}

// Help says what the counter counts, in a sentence.
func (c Counter) Help() string {
	if c >= 0 && c < Num {
		return info[c].help
	}
	return ""
}

// String returns the counter's name as stats frames carry it.
func (c Counter) String() string {
	if c >= 0 && c < Num {
		return info[c].name
	}
	return fmt.Sprintf("counter(%d)", int(c))
}

// Shard is one shard of a node's counts. Each datagram reader has its own
// so that readers on different cores never share a cache line; a node's
// stats add the shards up.
type Shard struct {
	v [Num]atomic.Uint64
	_ [128]byte
}

// Inc counts one.
func (s *Shard) Inc(k Counter) { s.v[k].Add(1) }

// Add counts n.
func (s *Shard) Add(k Counter, n uint64) { s.v[k].Add(n) }

// Drop counts a dropped frame and why.
func (s *Shard) Drop(why Counter) {
	s.v[why].Add(1)
	s.v[Dropped].Add(1)
}

// AddTo adds the shard's counts to counts.
func (s *Shard) AddTo(counts *[Num]uint64) {
	for i := range counts {
		counts[i] += s.v[i].Load()
	}
}

// Flag is a yes or no as a count: 1 or 0.
func Flag(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}
