package membership

import (
	"bytes"
	"testing"
	"time"
)

// FuzzClock: any bytes decode as a clock or are refused, never panic;
// what decodes encodes back to the same bytes, and any clock from 1970 to
// 2262 decodes back to itself. Whatever the clocks on either side and the
// round trip, taking an ack never panics and the offsets stay negatable.
func FuzzClock(f *testing.F) {
	f.Add(appendClock(nil, epoch), epoch.UnixMicro(), epoch.UnixNano(), int64(time.Millisecond))
	f.Add([]byte{}, int64(0), int64(0), int64(0))
	f.Add([]byte{1}, int64(-1), int64(-1<<63), int64(-1))
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, 0}, int64(maxClockMicros), int64(1<<63-1), int64(1<<63-1))
	f.Add([]byte{1, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, int64(1<<63-1), int64(0), int64(0))
	f.Fuzz(func(t *testing.T, b []byte, us, nowNanos, rtt int64) {
		if got, err := decodeClock(b); err == nil {
			if again := appendClock(nil, got); !bytes.Equal(again, b) {
				t.Fatalf("decoded %x as %v, encodes to %x", b, got, again)
			}
		}
		if us >= 0 && us <= maxClockMicros {
			want := time.UnixMicro(us)
			if got, err := decodeClock(appendClock(nil, want)); err != nil || !got.Equal(want) {
				t.Fatalf("%v encodes and decodes to %v, %v", want, got, err)
			}
		}

		now := time.Unix(0, nowNanos)
		m := clockNode(t, "a", &now)
		join(m, "b")
		p := (*pings)(m)
		p.NotifyPingComplete(fakeNode("b"), time.Duration(rtt), b)
		p.NotifyPingComplete(fakeNode("b"), time.Duration(rtt), appendClock(nil, time.UnixMicro(us)))
		c := m.Clock()
		if c.Members > 1 {
			t.Fatalf("one member, %d measured", c.Members)
		}
		if off, ok := m.Offsets()["b"]; ok && (off < 0) == (c.Offset < 0) && c.Offset != 0 {
			t.Fatalf("b is %v from a, yet a is %v from the cluster", off, c.Offset)
		}
	})
}
