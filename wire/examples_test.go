package wire

import (
	"bytes"
	"os"
	"testing"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/internal/docexamples"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// exampleFP is the fingerprint used by the documented examples: a blocked
// filter of 4 rows, k = 6, seed 0.
var exampleFP = filter.Fingerprint{Layout: filter.Blocked, Hash: filter.XXH3, K: 6, RowBits: 512, Rows: 4}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// examples builds every frame documented in docs/PROTOCOL.md.
// exampleChunk stands for a dump's chunk (package dump makes them; to
// the protocol they are bytes): its head, and no more.
var exampleChunk = []byte{'R', 'M', 'B', 'C', 1, 2, 0, 0, 0x01, 0x3e}

func examples() []struct {
	name  string
	frame []byte
} {
	packed := make([]byte, 50)
	packed[0], packed[49] = 0x01, 0x80 // bits 0 and 399
	row := make([]byte, 64)
	row[0], row[63] = 0x01, 0x80 // bits 0 and 511
	keys := func(ks ...string) [][]byte {
		var out [][]byte
		for _, k := range ks {
			out = append(out, []byte(k))
		}
		return out
	}
	ping := Ping{Type: TypePing, ReqID: 3, Version: ProtocolVersion, FP: exampleFP, Name: []byte("n1"), Addr: []byte("127.0.0.1:8000")}
	pong := ping
	pong.Type, pong.Flags, pong.Build = TypePong, PongAuthenticated, []byte("1.1.0")
	return []struct {
		name  string
		frame []byte
	}{
		{"classic-add", must(AppendClassicAdd(nil, []byte("abc")))},
		{"classic-has", must(AppendClassicHas(nil, []byte("abc")))},
		{"classic-has-reply", must(AppendClassicHasReply(nil, []byte("abc"), true))},
		{"classic-sync", must(AppendClassicSync(nil, 1, packed))},
		{"classic-peer", must(AppendClassicPeer(nil, []byte("127.0.0.1"), 9000))},
		{"classic-ack", AppendClassicAck(nil)},
		{"add-batch", must(AppendBatch(nil, TypeAddBatch, 1, FlagAck, keys("a", "bc")))},
		{"has-batch", must(AppendBatch(nil, TypeHasBatch, 2, 0, keys("a", "bc", "def")))},
		{"has-result", must(AppendResult(nil, TypeHasResult, 2, 3, []byte{0b101}))},
		{"add-result", must(AppendResult(nil, TypeAddResult, 1, 2, []byte{0b10}))},
		{"row-sync", must(AppendRowSync(nil, exampleFP, 7, 1, []RowRun{{First: 2, Rows: row}}))},
		{"sparse-sync", must(AppendSparseSync(nil, exampleFP, 7, 1, []RowRun{{First: 2, Rows: row}, {First: 9, Rows: bytes.Repeat([]byte{0xff}, 64)}}))},
		{"row-ack", must(AppendRowAck(nil, RowAck{Stamp: 7, Seq: 1, Rows: 1}))},
		{"digest", must(AppendDigest(nil, exampleFP, 64, 0, []uint64{0x1122334455667788, 0}))},
		{"pull", must(AppendPull(nil, exampleFP, []filter.Run{{First: 0, Count: 64}, {First: 128, Count: 1}}))},
		{"ping", must(AppendPing(nil, ping))},
		{"pong", must(AppendPing(nil, pong))},
		{"stats-request", must(AppendStatsRequest(nil, 4))},
		{"stats", must(AppendStats(nil, 4, []Stat{{"keys_added", 10}}))},
		{"error", must(AppendError(nil, ErrorFrame{ReqID: 5, Code: CodeFingerprint, Msg: []byte("fingerprint mismatch")}))},
		{"pull-done", must(AppendPullDone(nil, PullDone{Rows: 65}))},
		{"members-request", must(AppendMembersRequest(nil, 6))},
		{"stats-request-padded", must(PadFrame(must(AppendStatsRequest(nil, 4)), 0, 32))},
		{"peer-request", must(AppendPeerRequest(nil, PeerRequest{ReqID: 7, Host: []byte("10.0.0.2"), Port: 8000}))},
		{"peer-result", must(AppendPeerResult(nil, PeerResult{ReqID: 7, State: PeerChallenged, Addr: []byte("10.0.0.2:8000")}))},
		{"filter-request-create", must(AppendFilterRequest(nil, FilterRequest{ReqID: 4, Op: FilterOpCreate, Name: []byte("users"),
			Layout: filter.Blocked, Capacity: 1000, FPRate: 0.01}))},
		{"filter-request-windowed", must(AppendFilterRequest(nil, FilterRequest{ReqID: 5, Op: FilterOpCreate, Name: []byte("recent"),
			Layout: filter.Blocked, Capacity: 100_000, FPRate: 0.01, Window: 10_000, Slices: 10}))},
		{"filters", must(AppendFilters(nil, 4, 0, []FilterDesc{{Name: []byte("users"), Gen: 1, Created: 1_767_225_600_000,
			Origin: []byte("n1"), FP: exampleFP, Capacity: 1000, FPRate: 0.01, Keys: 2, FillPPM: 5859}}))},
		{"filter-request-placed", must(AppendFilterRequest(nil, FilterRequest{ReqID: 6, Op: FilterOpCreate, Name: []byte("sessions"),
			Layout: filter.Blocked, Capacity: 1000, FPRate: 0.01, Growth: 1, Replicas: 2}))},
		{"filters-placed", must(AppendFilters(nil, 6, FiltersStages|FiltersWindows|FiltersPlacement, []FilterDesc{{Name: []byte("sessions"),
			Gen: 1, Created: 1_767_225_600_000, Origin: []byte("n1"), FP: exampleFP, Capacity: 1000, FPRate: 0.01, NonScaling: true,
			Replicas: 2, Owners: [][]byte{[]byte("n2"), []byte("n3")}, Here: HeldNot}}))},
		{"dump-request", must(AppendDumpRequest(nil, DumpRequest{ReqID: 8, Name: []byte("users"), Iterator: 1 << 32}))},
		{"dump-chunk", must(AppendDumpChunk(nil, DumpChunk{ReqID: 8, Iterator: 1<<32 | 4096, Chunk: exampleChunk}))},
		{"load-request", must(AppendLoadRequest(nil, LoadRequest{ReqID: 9, Name: []byte("copy"), Chunk: exampleChunk}))},
		{"loaded", must(AppendLoaded(nil, Loaded{ReqID: 9, Rows: 1, Changed: 1}))},
		{"peers-request", must(AppendPeersRequest(nil, 10))},
		{"peers", must(AppendPeers(nil, 10, []PeerInfo{{Addr: []byte("10.0.0.2:8000"), Flags: PeerVerified, AckedTicksAgo: 3},
			{Addr: []byte("10.0.0.9:8000"), Missed: 4, AckedTicksAgo: NeverAcked}}))},
		{"expire-request", must(AppendExpireRequest(nil, ExpireRequest{ReqID: 11, Op: ExpireSet, Deadline: 1_767_225_605_000, Name: []byte("users")}))},
		{"expiry", must(AppendExpiry(nil, Expiry{ReqID: 11, Deadline: 1_767_225_605_000, Now: 1_767_225_600_000}))},
		{"named-has-batch", must(AppendNamed(nil, "users", must(AppendBatch(nil, TypeHasBatch, 3, 0, keys("k1")))))},
		{"named-segment-row-ack", must(AppendNamedSegment(nil, "users", 3, must(AppendRowAck(nil, RowAck{Stamp: 9, Seq: 1, Rows: 20}))))},
		{"members", must(AppendMembers(nil, 6, []Member{{Name: []byte("n1"), GossipAddr: []byte("10.0.0.1:7946"),
			DataAddr: []byte("10.0.0.1:8000"), State: MemberAlive, FPMatch: true, FP: exampleFP, Age: 42, LastSync: 350}}))},
	}
}

// TestProtocolDocExamples keeps docs/PROTOCOL.md honest: every hex example
// there is exactly what the encoders produce, and decodes. Run with
// WIRE_PRINT_EXAMPLES=1 to print them.
func TestProtocolDocExamples(t *testing.T) {
	found, err := docexamples.Read("../docs/PROTOCOL.md")
	require.NoError(t, err)
	type example struct {
		name    string
		frame   []byte
		payload bool // not a frame: memberlist carries it
	}
	var all []example
	for _, ex := range examples() {
		all = append(all, example{ex.name, ex.frame, false})
	}
	all = append(all,
		example{"node-meta", AppendNodeMeta(nil, NodeMeta{Version: ProtocolVersion, FP: exampleFP, DataPort: 8000, SealID: 42}), true},
		example{"local-state", must(AppendDigest(must(AppendLocalStateHeader(nil, []byte("n1"))), exampleFP, 1024, 0, []uint64{0x1122334455667788})), true},
	)
	for _, ex := range all {
		if os.Getenv("WIRE_PRINT_EXAMPLES") != "" {
			docexamples.Print(ex.name, ex.frame)
		}
		got, ok := found[ex.name]
		if assert.True(t, ok, "docs/PROTOCOL.md lacks example %s", ex.name) {
			assert.True(t, bytes.Equal(ex.frame, got), "example %s differs from the encoder:\n%s", ex.name, docexamples.Hex(ex.frame))
		}
		if n, err := FrameLen(ex.frame); err == nil && ex.name != "classic-has-reply" && !ex.payload {
			assert.Equal(t, len(ex.frame), n, ex.name)
		}
	}
}
