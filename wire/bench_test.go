package wire

import (
	"fmt"
	"testing"

	"github.com/rmbd/rmbd/filter"
)

// BenchmarkEncode and BenchmarkDecode cover every frame type with the
// documented examples, plus a full UDP-sized has batch.
func benchFrames() []struct {
	name  string
	frame []byte
} {
	keys := make([][]byte, 64)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "user:%012d", i)
	}
	exs := examples()
	full, _ := AppendBatch(nil, TypeHasBatch, 1, 0, keys)
	return append(exs, struct {
		name  string
		frame []byte
	}{"has-batch-64", full})
}

func decodeAny(name string, b []byte) error {
	switch name {
	case "classic-add":
		_, err := DecodeClassicKey(b, TypeAdd)
		return err
	case "classic-has":
		_, err := DecodeClassicKey(b, TypeHas)
		return err
	case "classic-has-reply":
		_, _, err := DecodeClassicHasReply(b)
		return err
	case "classic-sync":
		_, err := DecodeClassicSync(b)
		return err
	case "classic-peer":
		_, err := DecodeClassicPeer(b)
		return err
	case "classic-ack":
		return DecodeClassicAck(b)
	case "add-batch", "has-batch", "has-batch-64":
		bt, err := DecodeBatch(b)
		for range bt.Keys.All() {
		}
		return err
	case "has-result", "add-result":
		_, err := DecodeResult(b)
		return err
	case "row-sync":
		s, err := DecodeRowSync(b)
		for range s.Runs.All() {
		}
		return err
	case "row-ack":
		_, err := DecodeRowAck(b)
		return err
	case "digest":
		_, err := DecodeDigest(b)
		return err
	case "pull":
		_, err := DecodePull(b)
		return err
	case "ping", "pong":
		_, err := DecodePing(b)
		return err
	case "stats-request":
		_, err := DecodeStatsRequest(b)
		return err
	case "stats":
		_, err := DecodeStats(b)
		return err
	case "error":
		_, err := DecodeError(b)
		return err
	case "pull-done":
		_, err := DecodePullDone(b)
		return err
	case "members-request":
		_, err := DecodeMembersRequest(b)
		return err
	case "members":
		ms, err := DecodeMembers(b)
		for range ms.All() {
		}
		return err
	}
	return fmt.Errorf("no decoder for %s", name)
}

func BenchmarkDecode(b *testing.B) {
	for _, fr := range benchFrames() {
		b.Run(fr.name, func(b *testing.B) {
			b.SetBytes(int64(len(fr.frame)))
			b.ReportAllocs()
			for b.Loop() {
				if err := decodeAny(fr.name, fr.frame); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncode re-encodes each example from its decoded form into a
// reused buffer.
func BenchmarkEncode(b *testing.B) {
	ex := examples()
	byName := map[string][]byte{}
	for _, e := range ex {
		byName[e.name] = e.frame
	}
	buf := make([]byte, 0, 4096)
	keys := [][]byte{[]byte("a"), []byte("bc"), []byte("def")}
	batch, _ := DecodeBatch(byName["has-batch"])
	res, _ := DecodeResult(byName["has-result"])
	rs, _ := DecodeRowSync(byName["row-sync"])
	cs, _ := DecodeClassicSync(byName["classic-sync"])
	packed := cs.Pack(nil)
	ping, _ := DecodePing(byName["ping"])
	stats := []Stat{{"keys_added", 10}}
	sums := []uint64{1, 2}
	runs := []filter.Run{{First: 0, Count: 64}}
	encoders := map[string]func() error{
		"classic-add": func() (err error) { buf, err = AppendClassicAdd(buf[:0], keys[2]); return },
		"classic-has-reply": func() (err error) {
			buf, err = AppendClassicHasReply(buf[:0], keys[2], true)
			return
		},
		"classic-sync": func() (err error) { buf, err = AppendClassicSync(buf[:0], 1, packed); return },
		"classic-peer": func() (err error) { buf, err = AppendClassicPeer(buf[:0], keys[2], 9000); return },
		"classic-ack":  func() error { buf = AppendClassicAck(buf[:0]); return nil },
		"has-batch": func() (err error) {
			buf, err = AppendBatch(buf[:0], TypeHasBatch, batch.ReqID, 0, keys)
			return
		},
		"has-result": func() (err error) {
			buf, err = AppendResult(buf[:0], TypeHasResult, 2, res.Count, res.Bits)
			return
		},
		"row-sync": func() (err error) {
			var w RowSyncWriter
			w.Begin(buf[:0], rs.FP, rs.Stamp, rs.Seq)
			for first, rows := range rs.Runs.All() {
				w.Run(first, uint16(len(rows)/RowBytes(rs.FP)))
				w.Buf = append(w.Buf, rows...)
			}
			buf, err = w.Finish()
			return
		},
		"row-ack": func() (err error) { buf, err = AppendRowAck(buf[:0], RowAck{Stamp: 1, Seq: 2, Rows: 3}); return },
		"digest":  func() (err error) { buf, err = AppendDigest(buf[:0], rs.FP, 64, 0, sums); return },
		"pull":    func() (err error) { buf, err = AppendPull(buf[:0], rs.FP, runs); return },
		"ping":    func() (err error) { buf, err = AppendPing(buf[:0], ping); return },
		"stats":   func() (err error) { buf, err = AppendStats(buf[:0], 1, stats); return },
		"error": func() (err error) {
			buf, err = AppendError(buf[:0], ErrorFrame{ReqID: 1, Code: 2, Msg: keys[2]})
			return
		},
	}
	for _, e := range ex {
		enc, ok := encoders[e.name]
		if !ok {
			continue
		}
		b.Run(e.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := enc(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
