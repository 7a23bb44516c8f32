package auth

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func key(t testing.TB, b byte) Key {
	var k Key
	for i := range k {
		k[i] = b + byte(i)
	}
	return k
}

func ring(t testing.TB, keys ...Key) *Keyring {
	r, err := NewKeyring(keys)
	require.NoError(t, err)
	return r
}

func ackFrame(t testing.TB, seq uint32) []byte {
	b, err := wire.AppendRowAck(nil, wire.RowAck{Stamp: 7, Seq: seq, Rows: 1})
	require.NoError(t, err)
	return b
}

func TestKeyFiles(t *testing.T) {
	k, err := Generate()
	require.NoError(t, err)
	back, err := ParseKey(k.String())
	require.NoError(t, err)
	assert.Equal(t, k, back)
	k2, _ := Generate()
	keys, err := ParseKeys([]byte("# cluster keys\n" + k.String() + "\n\n  " + k2.String() + "  \n"))
	require.NoError(t, err)
	assert.Equal(t, []Key{k, k2}, keys)

	for _, bad := range []string{"", "# nothing\n", "not base64!\n", "YWJj\n", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"} {
		_, err := ParseKeys([]byte(bad))
		assert.ErrorIs(t, err, ErrKey, "%q", bad)
	}
	_, err = ParseKeys([]byte(k.String() + "\nnope\n"))
	assert.ErrorContains(t, err, "line 2")
	_, err = NewKeyring([]Key{k, k})
	assert.ErrorContains(t, err, "twice")
}

// now is the tests' clock; rx the id of the receiver they seal for.
var now = time.UnixMilli(1_700_000_000_000)

const rx = 7

func TestSealOpen(t *testing.T) {
	r := ring(t, key(t, 1))
	s, o := NewSealer(r), NewOpener(r, rx)
	inner := ackFrame(t, 3)
	sealed, err := s.Seal(nil, inner, rx, now)
	require.NoError(t, err)
	assert.Len(t, sealed, len(inner)+wire.SealedOverhead)
	got, err := o.Open(sealed, now.Add(time.Second))
	require.NoError(t, err)
	assert.Equal(t, inner, got.Inner)
	assert.Equal(t, s.Sender(), got.Sender)
	assert.Equal(t, uint64(rx), got.To)
	assert.Equal(t, now.UnixMilli(), got.Time)
	assert.Equal(t, wire.TypeRowAck, got.InnerType())

	_, err = o.Open(sealed, now)
	assert.ErrorIs(t, err, ErrReplay, "a second time")

	// Any byte changed: refused, and the sender's window is untouched.
	for i := range sealed {
		bad := bytes.Clone(sealed)
		bad[i] ^= 0x01
		_, err := NewOpener(r, rx).Open(bad, now)
		assert.Error(t, err, "byte %d flipped", i)
	}
	_, err = s.Seal(nil, []byte{byte(wire.TypeHasBatch), 0, 0, 0, 0}, rx, now)
	assert.Error(t, err, "client frames are never sealed")
}

// A frame sealed for one receiver is refused by every other, and by that
// receiver once it restarted (a new id): a recording replayed to another
// member, or to any after a restart, changes nothing.
func TestReceiverBinding(t *testing.T) {
	r := ring(t, key(t, 1))
	s := NewSealer(r)
	b, c := NewSealer(r), NewSealer(r) // two receivers
	frame, err := s.Seal(nil, ackFrame(t, 1), b.Sender(), now)
	require.NoError(t, err)

	_, err = NewOpener(r, b.Sender()).Open(frame, now)
	require.NoError(t, err, "its receiver")
	got, err := NewOpener(r, c.Sender()).Open(frame, now)
	require.ErrorIs(t, err, ErrReceiver, "another member")
	assert.Equal(t, s.Sender(), got.Sender, "the frame comes back with the error: its sender is owed a hint")
	restarted := NewSealer(r)
	_, err = NewOpener(r, restarted.Sender()).Open(frame, now)
	assert.ErrorIs(t, err, ErrReceiver, "the receiver after a restart: a new id")

	unknown, _ := s.Seal(nil, ackFrame(t, 2), 0, now)
	_, err = NewOpener(r, b.Sender()).Open(unknown, now)
	assert.ErrorIs(t, err, ErrReceiver, "sealed for nobody in particular")
	assert.NotZero(t, NewSealer(r).Sender(), "0 means unknown: no node has it")
}

// A frame is taken while young, by the sender's clock, within the skew
// two clocks may have.
func TestFreshness(t *testing.T) {
	r := ring(t, key(t, 1))
	s := NewSealer(r)
	for _, c := range []struct {
		sealed time.Duration // when, from now
		ok     bool
	}{
		{0, true},
		{-MaxAge, true},
		{-(MaxAge + MaxSkew), true},
		{-(MaxAge + MaxSkew + time.Second), false},
		{-time.Hour, false},
		{MaxSkew, true},
		{MaxSkew + time.Second, false},
	} {
		f, err := s.Seal(nil, ackFrame(t, 1), rx, now.Add(c.sealed))
		require.NoError(t, err)
		_, err = NewOpener(r, rx).Open(f, now)
		if c.ok {
			assert.NoError(t, err, "sealed %v from now", c.sealed)
		} else {
			assert.ErrorIs(t, err, ErrReplay, "sealed %v from now", c.sealed)
			assert.ErrorIs(t, err, ErrStale)
		}
	}
}

func TestOtherKeysAndRotation(t *testing.T) {
	old, neu, outsider := key(t, 1), key(t, 50), key(t, 99)
	sealedOld, _ := NewSealer(ring(t, old)).Seal(nil, ackFrame(t, 1), rx, now)
	sealedNew, _ := NewSealer(ring(t, neu)).Seal(nil, ackFrame(t, 1), rx, now)
	sealedOut, _ := NewSealer(ring(t, outsider)).Seal(nil, ackFrame(t, 1), rx, now)

	both := NewOpener(ring(t, neu, old), rx)
	_, err := both.Open(sealedOld, now)
	assert.NoError(t, err, "every key verifies")
	_, err = both.Open(sealedNew, now)
	assert.NoError(t, err)
	_, err = both.Open(sealedOut, now)
	assert.ErrorIs(t, err, ErrUnknownKey)

	// An outsider that guesses a key id still needs the key.
	forged := bytes.Clone(sealedOut)
	copy(forged[wire.HeaderSize:], sealedOld[wire.HeaderSize:wire.HeaderSize+4])
	_, err = both.Open(forged, now)
	assert.ErrorIs(t, err, ErrTag)

	// A sealer switched to another keyring signs with its first key.
	s := NewSealer(ring(t, old))
	s.SetKeyring(ring(t, neu, old))
	f, _ := s.Seal(nil, ackFrame(t, 2), rx, now)
	_, err = NewOpener(ring(t, neu), rx).Open(f, now)
	assert.NoError(t, err)
}

func TestReplayWindow(t *testing.T) {
	r := ring(t, key(t, 1))
	s, o := NewSealer(r), NewOpener(r, rx)
	var frames [][]byte
	for i := range windowBits + 10 {
		f, _ := s.Seal(nil, ackFrame(t, uint32(i)), rx, now)
		frames = append(frames, f)
	}
	// Reordered within the window: every frame once.
	for i := 20; i >= 10; i-- {
		_, err := o.Open(frames[i], now)
		require.NoError(t, err, "frame %d", i)
	}
	_, err := o.Open(frames[15], now)
	assert.ErrorIs(t, err, ErrReplay)
	_, err = o.Open(frames[len(frames)-1], now) // sequence windowBits+10
	require.NoError(t, err, "the newest moves the window on")
	_, err = o.Open(frames[3], now) // sequence 4: never seen, but windowBits+6 behind
	assert.ErrorIs(t, err, ErrReplay, "older than the window: stale")
	_, err = o.Open(frames[len(frames)-2], now)
	assert.NoError(t, err, "within the window, not seen yet")
}

func TestSendersAreBounded(t *testing.T) {
	r := ring(t, key(t, 1))
	o := NewOpener(r, rx)
	first := NewSealer(r)
	f1, _ := first.Seal(nil, ackFrame(t, 1), rx, now)
	f2, _ := first.Seal(nil, ackFrame(t, 2), rx, now)
	_, err := o.Open(f1, now)
	require.NoError(t, err)
	for range maxSenders {
		f, _ := NewSealer(r).Seal(nil, ackFrame(t, 1), rx, now)
		_, err := o.Open(f, now)
		require.NoError(t, err)
	}
	assert.Len(t, o.senders, maxSenders)
	_, err = o.Open(f2, now)
	assert.NoError(t, err, "the first sender, evicted, starts a window anew (its frames stay young a few seconds only)")
}

func TestConcurrentUse(t *testing.T) {
	r := ring(t, key(t, 1))
	s, o := NewSealer(r), NewOpener(r, rx)
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[uint64]bool{}
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				f, err := s.Seal(nil, ackFrame(t, uint32(g*1000+i)), rx, now)
				if err != nil {
					t.Error(err)
					return
				}
				got, err := o.Open(f, now)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[got.Seq] {
					t.Errorf("sequence %d twice", got.Seq)
				}
				seen[got.Seq] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	assert.Len(t, seen, 2000, "every frame a sequence of its own")
}

func FuzzOpen(f *testing.F) {
	r := ring(f, key(f, 1))
	s := &Sealer{sender: 42} // the same in every fuzzing process
	s.ring.Store(r)
	good, _ := s.Seal(nil, ackFrame(f, 1), rx, now)
	f.Add(good)
	f.Add(good[:20])
	f.Fuzz(func(t *testing.T, b []byte) {
		o := NewOpener(r, rx)
		got, err := o.Open(b, now)
		if err == nil && !bytes.Equal(b, good) {
			t.Fatalf("opened a frame that was never sealed: %x", got.Inner)
		}
	})
}

// FuzzParseKeys feeds key files of any content: they parse into keys that
// print back as lines of the file, or fail with ErrKey.
func FuzzParseKeys(f *testing.F) {
	k := key(f, 1)
	f.Add([]byte(k.String() + "\n"))
	f.Add([]byte("# comment\n\n  " + k.String() + "  \r\n" + key(f, 2).String()))
	f.Add([]byte("AAAA\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := ParseKeys(b)
		if err != nil {
			if !errors.Is(err, ErrKey) {
				t.Fatalf("error without ErrKey: %v", err)
			}
			return
		}
		if len(keys) == 0 {
			t.Fatal("no keys and no error")
		}
		for _, k := range keys {
			if k == (Key{}) || !bytes.Contains(b, []byte(k.String())) {
				t.Fatalf("key %s is not in the file", k)
			}
		}
	})
}
