package simdisk_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/internal/simdisk"
	"github.com/rmbd/rmbd/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The real store on a simulated disk that loses power: what it
// acknowledged survives every crash, and what it did not may be lost but
// never stops it from opening again.

const dataDir = "/data"

var testDef = func() store.Definition {
	f, err := filter.New(filter.Config{Layout: filter.Blocked, Capacity: 10_000, FPRate: 0.01})
	if err != nil {
		panic(err)
	}
	return store.Definition{Name: "default", FP: f.Fingerprint(), Capacity: 10_000, FPRate: 0.01}
}()

// openStore opens the data directory on d's current incarnation.
func openStore(t *testing.T, d *simdisk.Disk, policy store.FsyncPolicy) (*store.Store, *filter.Filter, store.Recovery) {
	t.Helper()
	f, err := filter.NewFromFingerprint(testDef.FP, 0)
	require.NoError(t, err)
	o := store.DefaultOptions()
	o.Fsync, o.CheckpointInterval, o.FS = policy, time.Hour, d.FS()
	s, rec, err := store.Open(dataDir, testDef, f, o)
	require.NoError(t, err, "the data directory opens after any crash")
	return s, f, rec
}

func testKeys(prefix string, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = fmt.Appendf(nil, "%s-%d", prefix, i)
	}
	return out
}

// crashAndReopen cuts the power under s, closes what is left of it (every
// call fails), and opens the directory again.
func crashAndReopen(t *testing.T, d *simdisk.Disk, s *store.Store, tear bool, policy store.FsyncPolicy) (*store.Store, *filter.Filter, store.Recovery) {
	t.Helper()
	d.Crash(tear)
	assert.Error(t, s.Close(), "the dead process's store fails")
	return openStore(t, d, policy)
}

func TestStoreKeepsAcknowledgedAdds(t *testing.T) {
	var sc store.Scratch
	for seed := range uint64(50) {
		synctest.Test(t, func(t *testing.T) {
			d := simdisk.New(seed)
			rng := rand.New(rand.NewPCG(seed, 2))
			s, f, _ := openStore(t, d, store.FsyncAlways)
			var acked [][]byte
			for round := range 3 {
				for i := range 1 + rng.IntN(20) {
					batch := testKeys(fmt.Sprintf("r%d-b%d", round, i), 1+rng.IntN(10))
					_, w, err := s.Add(batch, make([]byte, (len(batch)+7)/8), &sc)
					require.NoError(t, err)
					require.NoError(t, w.Wait(context.Background()))
					acked = append(acked, batch...)
					if rng.IntN(8) == 0 {
						_, err := s.Checkpoint()
						require.NoError(t, err)
					}
				}
				// An add nobody waits for, on its way to the disk as the
				// power goes.
				s.AddUnacked(testKeys(fmt.Sprintf("r%d-unacked", round), 50), make([]byte, 7), &sc)
				s, f, _ = crashAndReopen(t, d, s, rng.IntN(4) > 0, store.FsyncAlways)
				for _, k := range acked {
					require.True(t, f.Has(k), "seed %d: acknowledged key %s lost", seed, k)
				}
			}
			require.NoError(t, s.Close())
		})
	}
}

func TestStoreWithoutFsyncRecovers(t *testing.T) {
	var sc store.Scratch
	lost, truncated := 0, 0 // crashes that lost adds; torn log tails the store cut
	for seed := range uint64(50) {
		synctest.Test(t, func(t *testing.T) {
			d := simdisk.New(seed)
			rng := rand.New(rand.NewPCG(seed, 3))
			s, f, _ := openStore(t, d, store.FsyncNo)
			var kept [][]byte // durable: checkpointed, or found by a start
			for round := range 3 {
				var since [][]byte // added since
				for i := range 1 + rng.IntN(20) {
					batch := testKeys(fmt.Sprintf("r%d-b%d", round, i), 1+rng.IntN(10))
					s.AddUnacked(batch, make([]byte, (len(batch)+7)/8), &sc)
					since = append(since, batch...)
					if rng.IntN(8) == 0 {
						_, err := s.Checkpoint()
						require.NoError(t, err)
						kept, since = append(kept, since...), nil
					}
				}
				synctest.Wait() // the log's writer has written everything, unsynced
				var rec store.Recovery
				s, f, rec = crashAndReopen(t, d, s, true, store.FsyncNo)
				for _, k := range kept {
					require.True(t, f.Has(k), "seed %d: key %s, checkpointed, lost", seed, k)
				}
				truncated += rec.Truncated
				// What the start found is durable now: the next crash keeps it.
				lostHere := false
				for _, k := range since {
					if f.Has(k) {
						kept = append(kept, k)
					} else {
						lostHere = true
					}
				}
				if lostHere {
					lost++
				}
			}
			require.NoError(t, s.Close())
		})
	}
	t.Logf("150 crashes without fsync: %d lost adds, and %d torn log tails were cut", lost, truncated)
	assert.Positive(t, lost, "a crash loses adds that were not fsynced")
	assert.Positive(t, truncated, "and tears the log's tail, which the store cuts")
}
