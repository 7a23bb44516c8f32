package wire

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/rmbd/rmbd/filter"
)

// Each decoder has a fuzz target: it must never panic, and any frame it
// accepts must re-encode to the identical bytes.

func seed(f *testing.F) {
	for _, ex := range examples() {
		f.Add(ex.frame)
	}
	f.Add([]byte{})
	f.Add([]byte{0x10, 0xff, 0xff, 0xff, 0xff})
}

func same(t *testing.T, in, out []byte, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("re-encoding an accepted frame failed: %v", err)
	}
	if !bytes.Equal(in, out) {
		t.Fatalf("re-encoded frame differs:\n in %x\nout %x", in, out)
	}
}

func FuzzClassicKey(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, typ := range []Type{TypeAdd, TypeHas} {
			key, err := DecodeClassicKey(b, typ)
			if err != nil {
				continue
			}
			var out []byte
			if typ == TypeAdd {
				out, err = AppendClassicAdd(nil, key)
			} else {
				out, err = AppendClassicHas(nil, key)
			}
			same(t, b, out, err)
		}
	})
}

func FuzzClassicHasReply(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		key, present, err := DecodeClassicHasReply(b)
		if err == nil {
			out, err := AppendClassicHasReply(nil, key, present)
			same(t, b, out, err)
		}
	})
}

func FuzzClassicSync(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeClassicSync(b)
		if err == nil {
			out, err := AppendClassicSync(nil, s.Row, s.Pack(nil))
			same(t, b, out, err)
		}
	})
}

func FuzzClassicPeer(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeClassicPeer(b)
		if err == nil {
			out, err := AppendClassicPeer(nil, p.Host, p.Port)
			same(t, b, out, err)
		}
	})
}

func FuzzClassicAck(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if DecodeClassicAck(b) == nil {
			same(t, b, AppendClassicAck(nil), nil)
		}
	})
}

func FuzzBatch(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		bt, err := DecodeBatch(b)
		if err != nil {
			return
		}
		var keys [][]byte
		for k := range bt.Keys.All() {
			keys = append(keys, k)
		}
		if len(keys) != bt.Keys.Len() {
			t.Fatalf("yielded %d keys, Len says %d", len(keys), bt.Keys.Len())
		}
		out, err := AppendBatch(nil, bt.Type, bt.ReqID, bt.Flags, keys)
		same(t, b, out, err)
	})
}

func FuzzResult(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeResult(b)
		if err == nil {
			out, err := AppendResult(nil, r.Type, r.ReqID, r.Count, r.Bits)
			same(t, b, out, err)
		}
	})
}

func FuzzRowSync(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeRowSync(b)
		if err == nil {
			var runs []RowRun
			for first, rows := range s.Runs.All() {
				runs = append(runs, RowRun{first, bytes.Clone(rows)}) // a sparse frame's rows share a buffer
			}
			if len(runs) != s.Runs.Len() {
				t.Fatalf("yielded %d runs, Len says %d", len(runs), s.Runs.Len())
			}
			if Type(b[0]) == TypeSparseSync {
				out, err := AppendSparseSync(nil, s.FP, s.Stamp, s.Seq, runs)
				same(t, b, out, err)
				return
			}
			out, err := AppendRowSync(nil, s.FP, s.Stamp, s.Seq, runs)
			same(t, b, out, err)
		}
	})
}

func FuzzRowAck(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := DecodeRowAck(b)
		if err == nil {
			out, err := AppendRowAck(nil, a)
			same(t, b, out, err)
		}
	})
}

func FuzzDigest(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodeDigest(b)
		if err != nil {
			return
		}
		sums := make([]uint64, d.Count)
		for i := range sums {
			sums[i] = d.Sum(i)
		}
		out, err := AppendDigest(nil, d.FP, d.BlockRows, d.FirstBlock, sums)
		same(t, b, out, err)
	})
}

func FuzzPull(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodePull(b)
		if err != nil {
			return
		}
		runs := make([]filter.Run, p.Count)
		for i := range runs {
			runs[i] = p.Run(i)
		}
		out, err := AppendPull(nil, p.FP, runs)
		same(t, b, out, err)
	})
}

func FuzzPing(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodePing(b)
		if err == nil {
			out, err := AppendPing(nil, p)
			same(t, b, out, err)
		}
	})
}

func FuzzStats(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if id, err := DecodeStatsRequest(b); err == nil {
			out, _ := AppendStatsRequest(nil, id)
			out, err = PadFrame(out, 0, len(b)) // requests may be padded
			same(t, b, out, err)
		}
		s, err := DecodeStats(b)
		if err != nil {
			return
		}
		var stats []Stat
		for name, v := range s.All() {
			stats = append(stats, Stat{string(name), v})
		}
		out, err := AppendStats(nil, s.ReqID, stats)
		same(t, b, out, err)
	})
}

func FuzzError(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeError(b)
		if err == nil {
			out, err := AppendError(nil, e)
			same(t, b, out, err)
		}
	})
}

func FuzzPullDone(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodePullDone(b)
		if err == nil {
			out, err := AppendPullDone(nil, d)
			same(t, b, out, err)
		}
	})
}

func FuzzMembers(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if id, err := DecodeMembersRequest(b); err == nil {
			out, _ := AppendMembersRequest(nil, id)
			out, err = PadFrame(out, 0, len(b))
			same(t, b, out, err)
		}
		ms, err := DecodeMembers(b)
		if err != nil {
			return
		}
		var list []Member
		for m := range ms.All() {
			list = append(list, m)
		}
		out, err := AppendMembers(nil, ms.ReqID, list)
		if err == nil && !ms.timed { // an older node's frame: no timing block
			out = out[:len(out)-8*ms.Count]
			binary.BigEndian.PutUint32(out[1:], uint32(len(out)-HeaderSize))
		}
		same(t, b, out, err)
	})
}

// FuzzFrameLen checks the stream framing: a length FrameLen gives is never
// below what it needed to read, and frames it sizes fit MaxFrame.
func FuzzPeerRequest(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, err := DecodePeerRequest(b); err == nil {
			out, err := AppendPeerRequest(nil, p)
			same(t, b, out, err)
		}
		if p, err := DecodePeerResult(b); err == nil {
			out, err := AppendPeerResult(nil, p)
			same(t, b, out, err)
		}
	})
}

func FuzzDump(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if q, err := DecodeDumpRequest(b); err == nil {
			q.Pad = len(b)
			out, err := AppendDumpRequest(nil, q)
			same(t, b, out, err)
		}
		if c, err := DecodeDumpChunk(b); err == nil {
			out, err := AppendDumpChunk(nil, c)
			same(t, b, out, err)
		}
		if q, err := DecodeLoadRequest(b); err == nil {
			out, err := AppendLoadRequest(nil, q)
			same(t, b, out, err)
		}
		if l, err := DecodeLoaded(b); err == nil {
			out, err := AppendLoaded(nil, l)
			same(t, b, out, err)
		}
	})
}

func FuzzPeers(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if id, err := DecodePeersRequest(b); err == nil {
			out, err := AppendPeersRequest(nil, id)
			if err == nil && len(out) < len(b) {
				out, err = PadFrame(out, 0, len(b))
			}
			same(t, b, out, err)
		}
		if ps, err := DecodePeers(b); err == nil {
			out, err := AppendPeers(nil, ps.ReqID, ps.List)
			same(t, b, out, err)
		}
	})
}

func FuzzExpire(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if q, err := DecodeExpireRequest(b); err == nil {
			q.Pad = len(b)
			out, err := AppendExpireRequest(nil, q)
			same(t, b, out, err)
		}
		if x, err := DecodeExpiry(b); err == nil {
			out, err := AppendExpiry(nil, x)
			same(t, b, out, err)
		}
	})
}

func FuzzSealed(f *testing.F) {
	seed(f)
	for _, ex := range examples() {
		if Sealable(Type(ex.frame[0])) {
			b, start := AppendSealedHead(nil, SealedHead{KeyID: 1, Sender: 2, Seq: 3, To: 4, Time: 1_700_000_000_000})
			b, _ = FinishSealedLength(append(b, ex.frame...), start)
			f.Add(append(b, make([]byte, TagSize)...))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeSealed(b)
		if err != nil {
			return
		}
		if !Sealable(s.InnerType()) || len(s.Tag) != TagSize || len(s.Covered)+TagSize != len(b) {
			t.Fatalf("accepted a bad layout: inner %v, tag %d bytes", s.InnerType(), len(s.Tag))
		}
		if n, err := FrameLen(s.Inner); err != nil || n != len(s.Inner) {
			t.Fatalf("the inner frame is not one whole frame: %v", err)
		}
		out, start := AppendSealedHead(nil, s.SealedHead)
		out, err = FinishSealedLength(append(out, s.Inner...), start)
		same(t, b, append(out, s.Tag...), err)
	})
}

func FuzzFrameLen(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := FrameLen(b)
		if err != nil {
			return
		}
		if n < 1 || n > MaxFrame || Type(b[0]).Extended() && n < HeaderSize {
			t.Fatalf("FrameLen = %d for %x", n, b[:min(len(b), 8)])
		}
	})
}

func FuzzNodeMeta(f *testing.F) {
	f.Add(AppendNodeMeta(nil, NodeMeta{Version: ProtocolVersion, FP: exampleFP, DataPort: 8000}))
	f.Add([]byte{2, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeNodeMeta(b)
		if err == nil {
			same(t, b, AppendNodeMeta(nil, m), nil)
		}
	})
}

func FuzzLocalState(f *testing.F) {
	state := must(AppendLocalStateHeader(nil, []byte("n1")))
	state = must(AppendDigest(state, exampleFP, 1024, 0, []uint64{1, 2, 3}))
	f.Add(state)
	f.Add(must(AppendDigest(state, exampleFP, 1024, 3, []uint64{4})))
	f.Add([]byte{ProtocolVersion, 0})
	f.Add(must(AppendCatalogFrame(bytes.Clone(state), []byte{0, 0})))
	f.Add(must(AppendNamed(bytes.Clone(state), "users", must(AppendDigest(nil, exampleFP, 1024, 0, []uint64{7})))))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeLocalState(b)
		if err != nil {
			return
		}
		out, err := AppendLocalStateHeader(nil, s.Name)
		out = append(out, s.Digests...)
		out = append(out, s.Named...)
		if s.Catalog != nil {
			out, _ = AppendCatalogFrame(out, s.Catalog)
		}
		same(t, b, out, err)
		for rest := s.Digests; len(rest) > 0; { // every frame inside decodes
			n, err := FrameLen(rest)
			if err != nil || n > len(rest) {
				t.Fatalf("accepted state holds a bad frame: %v", err)
			}
			if _, err := DecodeDigest(rest[:n]); err != nil {
				t.Fatalf("accepted state holds a bad digest: %v", err)
			}
			rest = rest[n:]
		}
	})
}
