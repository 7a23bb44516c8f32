package wire

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"

	"github.com/rmbd/rmbd/filter"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func collectKeys(k Keys) []string {
	var out []string
	for key := range k.All() {
		out = append(out, string(key))
	}
	return out
}

func TestBatchRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte{0xab}, MaxKeyLen)
	keys := [][]byte{[]byte("a"), {}, big, []byte("zz")}
	f, err := AppendBatch(nil, TypeAddBatch, 42, FlagAck, keys)
	require.NoError(t, err)
	assert.Equal(t, BatchSize(4, 1+0+MaxKeyLen+2), len(f))
	b, err := DecodeBatch(f)
	require.NoError(t, err)
	assert.Equal(t, TypeAddBatch, b.Type)
	assert.Equal(t, uint32(42), b.ReqID)
	assert.Equal(t, FlagAck, b.Flags)
	assert.Equal(t, 4, b.Keys.Len())
	assert.Equal(t, []string{"a", "", string(big), "zz"}, collectKeys(b.Keys))

	h, _ := AppendBatch(nil, TypeHasBatch, 1, 0, keys[:1])
	b, err = DecodeBatch(h)
	require.NoError(t, err)
	assert.Equal(t, TypeHasBatch, b.Type)

	_, err = AppendBatch(nil, TypeHasBatch, 1, FlagAck, keys)
	assert.ErrorIs(t, err, ErrValue, "has takes no flags")
	_, err = AppendBatch(nil, TypeAddBatch, 1, 0, [][]byte{append(big, 1)})
	assert.ErrorIs(t, err, ErrKeyLength)
	_, err = AppendBatch(nil, TypeAddBatch, 1, 0, make([][]byte, MaxBatchKeys+1))
	assert.ErrorIs(t, err, ErrTooLarge)
	out, err := AppendBatch([]byte("keep"), TypeAddBatch, 1, 0, [][]byte{append(big, 1)})
	assert.Error(t, err)
	assert.Equal(t, "keep", string(out), "a failed encode leaves dst as it was")
}

func TestBatchValidation(t *testing.T) {
	good, _ := AppendBatch(nil, TypeHasBatch, 9, 0, [][]byte{[]byte("ab"), []byte("c")})
	mut := func(f func(b []byte) []byte) []byte { return f(slices.Clone(good)) }
	for name, tc := range map[string]struct {
		frame []byte
		want  error
		msg   string
	}{
		"header only":   {good[:3], ErrShort, "wire: short frame: has batch at offset 0"},
		"body cut":      {good[:len(good)-1], ErrShort, "wire: short frame: has batch at offset 18"},
		"trailing":      {append(slices.Clone(good), 0), ErrTrailing, "wire: trailing bytes: has batch at offset 19"},
		"huge length":   {mut(func(b []byte) []byte { binary.BigEndian.PutUint32(b[1:], 1<<30); return b }), ErrTooLarge, "wire: length over limit: has batch at offset 1"},
		"has flags":     {mut(func(b []byte) []byte { b[9] = 1; return b }), ErrValue, "wire: bad value: has batch at offset 9"},
		"count too big": {mut(func(b []byte) []byte { binary.BigEndian.PutUint16(b[10:], MaxBatchKeys+1); return b }), ErrTooLarge, ""},
		"count lies":    {mut(func(b []byte) []byte { b[11] = 3; return b }), ErrShort, ""},
		"count short":   {mut(func(b []byte) []byte { b[11] = 1; return b }), ErrTrailing, ""},
		"key overruns":  {mut(func(b []byte) []byte { b[13] = 9; return b }), ErrShort, ""},
		"key too long":  {mut(func(b []byte) []byte { binary.BigEndian.PutUint16(b[12:], MaxKeyLen+1); return b }), ErrKeyLength, "wire: key too long: has batch at offset 12"},
		"unknown type":  {mut(func(b []byte) []byte { b[0] = 0x1f; return b }), ErrType, ""},
	} {
		_, err := DecodeBatch(tc.frame)
		assert.ErrorIs(t, err, tc.want, name)
		if tc.msg != "" {
			assert.EqualError(t, err, tc.msg, name)
		}
	}
}

func TestResult(t *testing.T) {
	f, err := AppendResult(nil, TypeHasResult, 3, 10, []byte{0b1000_0001, 0b10})
	require.NoError(t, err)
	r, err := DecodeResult(f)
	require.NoError(t, err)
	var got []bool
	for i := range r.Count {
		got = append(got, r.Get(i))
	}
	assert.Equal(t, []bool{true, false, false, false, false, false, false, true, false, true}, got)
	assert.False(t, r.Get(10))
	assert.False(t, r.Get(-1))

	_, err = AppendResult(nil, TypeHasResult, 3, 10, []byte{0, 0b100})
	assert.ErrorIs(t, err, ErrValue, "bits past the count")
	f[len(f)-1] |= 0b100
	_, err = DecodeResult(f)
	assert.EqualError(t, err, "wire: bad value: has result at offset 12")
	_, err = AppendResult(nil, TypeHasResult, 3, 10, []byte{0})
	assert.ErrorIs(t, err, ErrValue, "bitmap size")

	e, _ := AppendResult(nil, TypeAddResult, 1, 0, nil)
	r, err = DecodeResult(e)
	require.NoError(t, err)
	assert.Equal(t, TypeAddResult, r.Type)
	assert.Zero(t, r.Count)
}

func collectRuns(s RowSync) []RowRun {
	var out []RowRun
	for first, rows := range s.Runs.All() {
		out = append(out, RowRun{first, rows})
	}
	return out
}

func TestRowSync(t *testing.T) {
	fp := exampleFP
	rows := make([]byte, 3*64)
	rows[5] = 0xff
	runs := []RowRun{{First: 1, Rows: rows[:128]}, {First: 9, Rows: rows[128:]}}
	f, err := AppendRowSync(nil, fp, 99, 4, runs)
	require.NoError(t, err)
	assert.Len(t, f, RowSyncHeaderSize+2*RunHeaderSize+3*64)
	s, err := DecodeRowSync(f)
	require.NoError(t, err)
	assert.Equal(t, fp, s.FP)
	assert.Equal(t, uint64(99), s.Stamp)
	assert.Equal(t, uint32(4), s.Seq)
	assert.Equal(t, 2, s.Runs.Len())
	assert.Equal(t, 3, s.Runs.Rows())
	assert.Equal(t, runs, collectRuns(s))

	// The writer builds the same frame with rows appended in place.
	var w RowSyncWriter
	w.Begin(nil, fp, 99, 4)
	w.Run(1, 2)
	w.Buf = append(w.Buf, rows[:128]...)
	w.Run(9, 1)
	w.Buf = append(w.Buf, rows[128:]...)
	assert.Equal(t, len(f), w.Size())
	g, err := w.Finish()
	require.NoError(t, err)
	assert.Equal(t, f, g)
	w.Begin([]byte("x"), fp, 1, 1)
	w.Run(0, 2)
	w.Buf = append(w.Buf, rows[:64]...) // one row short
	g, err = w.Finish()
	assert.ErrorIs(t, err, ErrValue)
	assert.Equal(t, "x", string(g))

	classic := filter.NewClassic().Fingerprint()
	c, err := AppendRowSync(nil, classic, 1, 0, []RowRun{{0, make([]byte, 50)}})
	require.NoError(t, err)
	s, err = DecodeRowSync(c)
	require.NoError(t, err)
	assert.Equal(t, 1, s.Runs.Rows())

	_, err = AppendRowSync(nil, fp, 1, 0, []RowRun{{0, rows[:63]}})
	assert.ErrorIs(t, err, ErrValue)
	_, err = AppendRowSync(nil, fp, 1, 0, nil)
	assert.ErrorIs(t, err, ErrValue)
	_, err = AppendRowSync(nil, fp, 1, 0, []RowRun{{0, make([]byte, 16<<20)}})
	assert.Error(t, err)

	bad := slices.Clone(f)
	bad[5+4], bad[5+5] = 0, 0 // W = 0
	_, err = DecodeRowSync(bad)
	assert.EqualError(t, err, "wire: bad value: row sync at offset 9")
	bad = slices.Clone(f)
	bad[42] = 4 // first run claims 4 rows
	_, err = DecodeRowSync(bad)
	assert.ErrorIs(t, err, ErrShort)
	bad[42] = 0
	_, err = DecodeRowSync(bad)
	assert.EqualError(t, err, "wire: bad value: row sync at offset 41")
	bad = slices.Clone(f)
	bad[36] = 0 // zero runs
	_, err = DecodeRowSync(bad)
	assert.EqualError(t, err, "wire: bad value: row sync at offset 35")

	a, err := AppendRowAck(nil, RowAck{Stamp: 99, Seq: 4, Rows: 3})
	require.NoError(t, err)
	assert.Len(t, a, RowAckSize)
	ack, err := DecodeRowAck(a)
	require.NoError(t, err)
	assert.Equal(t, RowAck{Stamp: 99, Seq: 4, Rows: 3}, ack)
	_, err = DecodeRowAck(a[:len(a)-1])
	assert.ErrorIs(t, err, ErrShort)
}

func TestDigestAndPull(t *testing.T) {
	sums := []uint64{1, 2, 0xffffffffffffffff}
	f, err := AppendDigest(nil, exampleFP, 64, 5, sums)
	require.NoError(t, err)
	d, err := DecodeDigest(f)
	require.NoError(t, err)
	assert.Equal(t, uint32(64), d.BlockRows)
	assert.Equal(t, uint32(5), d.FirstBlock)
	assert.Equal(t, 3, d.Count)
	for i, s := range sums {
		assert.Equal(t, s, d.Sum(i))
	}
	assert.Zero(t, d.Sum(3))
	_, err = AppendDigest(nil, exampleFP, 0, 0, sums)
	assert.ErrorIs(t, err, ErrValue)
	_, err = AppendDigest(nil, exampleFP, 1, 0, make([]uint64, MaxDigests+1))
	assert.ErrorIs(t, err, ErrTooLarge)

	runs := []filter.Run{{First: 0, Count: 10}, {First: 1 << 31, Count: 1}}
	p, err := AppendPull(nil, exampleFP, runs)
	require.NoError(t, err)
	pl, err := DecodePull(p)
	require.NoError(t, err)
	assert.Equal(t, exampleFP, pl.FP)
	assert.Equal(t, runs, []filter.Run{pl.Run(0), pl.Run(1)})
	_, err = AppendPull(nil, exampleFP, []filter.Run{{First: 0, Count: 0}})
	assert.ErrorIs(t, err, ErrValue)
	_, err = AppendPull(nil, exampleFP, nil)
	assert.ErrorIs(t, err, ErrTooLarge)
	p[len(p)-1] = 0
	_, err = DecodePull(p)
	assert.ErrorIs(t, err, ErrValue, "empty run")
}

func TestControlFrames(t *testing.T) {
	in := Ping{Type: TypePong, ReqID: 8, Version: ProtocolVersion, FP: exampleFP, Name: []byte("node-a"), Addr: []byte("[::1]:8000"),
		Flags: PongAuthenticated, Build: []byte("v1.0.0")}
	f, err := AppendPing(nil, in)
	require.NoError(t, err)
	out, err := DecodePing(f)
	require.NoError(t, err)
	assert.Equal(t, in, out)
	_, err = AppendPing(nil, Ping{Type: TypePing, Name: make([]byte, 256)})
	assert.ErrorIs(t, err, ErrTooLarge)
	_, err = AppendPing(nil, Ping{Type: TypePing, Flags: 1})
	assert.ErrorIs(t, err, ErrValue, "a ping carries no pong flags")

	// Requests over UDP are padded with zeros; anything else after the
	// fields is refused.
	r, _ := AppendStatsRequest(nil, 77)
	r, err = PadFrame(r, 0, 1400)
	require.NoError(t, err)
	require.Len(t, r, 1400)
	id, err := DecodeStatsRequest(r)
	require.NoError(t, err)
	assert.Equal(t, uint32(77), id)
	r[700] = 1
	_, err = DecodeStatsRequest(r)
	assert.ErrorIs(t, err, ErrValue, "padding is zeros")
	ping, _ := AppendPing(nil, Ping{Type: TypePing, ReqID: 3})
	ping, _ = PadFrame(ping, 0, 500)
	p, err := DecodePing(ping)
	require.NoError(t, err)
	assert.Equal(t, 500-len(must(AppendPing(nil, Ping{Type: TypePing}))), p.Pad)

	pr, err := AppendPeerRequest(nil, PeerRequest{ReqID: 9, Host: []byte("10.0.0.1"), Port: 8000})
	require.NoError(t, err)
	assert.Len(t, pr, MinPeerRequest, "padded to the size of the challenge it causes")
	dp, err := DecodePeerRequest(pr)
	require.NoError(t, err)
	assert.Equal(t, PeerRequest{ReqID: 9, Host: []byte("10.0.0.1"), Port: 8000, Pad: MinPeerRequest - 20}, dp)
	pr, _ = AppendPeerRequest(nil, PeerRequest{ReqID: 9, Host: []byte("10.0.0.1"), Port: 8000, Pad: 500})
	assert.Len(t, pr, 520, "padded more on request")
	short := []byte{byte(TypePeerRequest), 0, 0, 0, 15, 0, 0, 0, 9, 8, '1', '0', '.', '0', '.', '0', '.', '1', 0x1f, 0x40}
	_, err = DecodePeerRequest(short)
	assert.ErrorIs(t, err, ErrShort, "a peer request smaller than its challenge")
	_, err = AppendPeerRequest(nil, PeerRequest{Host: []byte("h")})
	assert.ErrorIs(t, err, ErrValue, "port 0")
	res, _ := AppendPeerResult(nil, PeerResult{ReqID: 9, State: PeerChallenged, Addr: []byte("10.0.0.1:8000")})
	dr, err := DecodePeerResult(res)
	require.NoError(t, err)
	assert.Equal(t, PeerChallenged, dr.State)

	stats := []Stat{{"adds", 1}, {"has", 1 << 40}, {"", 0}}
	s, err := AppendStats(nil, 77, stats)
	require.NoError(t, err)
	st, err := DecodeStats(s)
	require.NoError(t, err)
	var got []Stat
	for name, v := range st.All() {
		got = append(got, Stat{string(name), v})
	}
	assert.Equal(t, stats, got)
	_, err = AppendStats(nil, 1, []Stat{{string(make([]byte, 65)), 1}})
	assert.ErrorIs(t, err, ErrTooLarge)

	e, err := AppendError(nil, ErrorFrame{ReqID: 1, Code: CodeTooLarge, Msg: make([]byte, 5000)})
	require.NoError(t, err)
	ef, err := DecodeError(e)
	require.NoError(t, err)
	assert.Len(t, ef.Msg, MaxErrorMsg, "long messages are cut")
	assert.Equal(t, CodeTooLarge, ef.Code)
}

func TestFrameLen(t *testing.T) {
	for _, ex := range examples() {
		if ex.name == "classic-has-reply" {
			continue
		}
		// Split into the first bytes only: FrameLen needs at most 5.
		n, err := FrameLen(ex.frame[:min(len(ex.frame), HeaderSize)])
		require.NoError(t, err, ex.name)
		assert.Equal(t, len(ex.frame), n, ex.name)
	}
	_, err := FrameLen([]byte{0x10, 0, 0})
	assert.ErrorIs(t, err, ErrShort)
	_, err = FrameLen(nil)
	assert.ErrorIs(t, err, ErrShort)
	_, err = FrameLen([]byte{0x05})
	assert.EqualError(t, err, "wire: unknown frame type: type 0x05 at offset 0")
	_, err = FrameLen([]byte{0x10, 0x00, 0x10, 0x00, 0x01})
	assert.ErrorIs(t, err, ErrTooLarge)
}

// TestNoAllocations: encoding into a buffer with room and decoding any
// frame allocate nothing.
func TestNoAllocations(t *testing.T) {
	keys := [][]byte{[]byte("alpha"), []byte("beta")}
	buf := make([]byte, 0, 4096)
	batch, _ := AppendBatch(nil, TypeHasBatch, 1, 0, keys)
	sync, _ := AppendRowSync(nil, exampleFP, 1, 0, []RowRun{{0, make([]byte, 64)}})
	row := make([]byte, 64)
	classic, _ := AppendClassicHas(nil, []byte("abc"))
	allocs := testing.AllocsPerRun(100, func() {
		buf, _ = AppendBatch(buf[:0], TypeHasBatch, 1, 0, keys)
		buf, _ = AppendClassicHasReply(buf[:0], []byte("abc"), true)
		var w RowSyncWriter
		w.Begin(buf[:0], exampleFP, 1, 0)
		w.Run(0, 1)
		w.Buf = append(w.Buf, row...)
		buf, _ = w.Finish()
		b, _ := DecodeBatch(batch)
		for range b.Keys.All() {
		}
		rs, _ := DecodeRowSync(sync)
		for range rs.Runs.All() {
		}
		_, _ = DecodeClassicKey(classic, TypeHas)
	})
	assert.Zero(t, allocs)
}

func TestMembersAndPullDone(t *testing.T) {
	in := []Member{
		{Name: []byte("a"), GossipAddr: []byte("h:1"), DataAddr: []byte("h:2"), State: MemberSuspect, FPMatch: true, FP: exampleFP},
		{Name: []byte("b"), State: MemberDead},
	}
	f, err := AppendMembers(nil, 3, in)
	require.NoError(t, err)
	ms, err := DecodeMembers(f)
	require.NoError(t, err)
	assert.Equal(t, uint32(3), ms.ReqID)
	var got []Member
	for m := range ms.All() {
		got = append(got, m)
	}
	require.Len(t, got, 2)
	assert.Equal(t, "h:2", string(got[0].DataAddr))
	assert.True(t, got[0].FPMatch)
	assert.Equal(t, MemberDead, got[1].State)

	// The timing block: present, absent (an older node), or cut.
	in[0].Age, in[0].LastSync = 7, 250
	f, _ = AppendMembers(nil, 3, in)
	ms, err = DecodeMembers(f)
	require.NoError(t, err)
	for m := range ms.All() {
		assert.Equal(t, uint32(7), m.Age)
		assert.Equal(t, uint32(250), m.LastSync)
		break
	}
	old := slices.Clone(f[:len(f)-16])
	binary.BigEndian.PutUint32(old[1:], uint32(len(old)-5))
	ms, err = DecodeMembers(old)
	require.NoError(t, err, "an older node's frame")
	for m := range ms.All() {
		assert.Zero(t, m.Age)
		assert.Equal(t, NeverSynced, m.LastSync, "unknown reads as never")
	}
	cut := slices.Clone(f[:len(f)-4])
	binary.BigEndian.PutUint32(cut[1:], uint32(len(cut)-5))
	_, err = DecodeMembers(cut)
	assert.Error(t, err, "a timing block cut short")

	_, err = AppendMembers(nil, 1, []Member{{State: 9}})
	assert.ErrorIs(t, err, ErrValue)
	bad := slices.Clone(f)
	bad[12+1+1+3+3+1] = 7 // state of the first member
	_, err = DecodeMembers(bad)
	assert.ErrorIs(t, err, ErrValue)

	d, _ := AppendPullDone(nil, PullDone{Rows: 9})
	pd, err := DecodePullDone(d)
	require.NoError(t, err)
	assert.Equal(t, uint32(9), pd.Rows)
}

// RequestID reads the id every extended request carries first, and
// nothing from other frames.
func TestRequestID(t *testing.T) {
	b, _ := AppendBatch(nil, TypeHasBatch, 77, 0, [][]byte{[]byte("k")})
	id, ok := RequestID(b)
	assert.True(t, ok)
	assert.Equal(t, uint32(77), id)
	s, _ := AppendStatsRequest(nil, 9)
	id, ok = RequestID(s)
	assert.True(t, ok)
	assert.Equal(t, uint32(9), id)
	for _, f := range [][]byte{nil, b[:HeaderSize+2], {byte(TypeSync), 0, 0, 0, 0}} {
		_, ok = RequestID(f)
		assert.False(t, ok)
	}
}
