package node

import (
	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/store"
)

// addLogged adds keys to f, kept in st, and sets bit i of
// bits for each key that changed the filter (a test-and-set); it returns
// how many did.
//
// The keys not yet in the filter are logged before any is applied, inside
// the store's add barrier, so that a checkpoint never copies rows whose
// records it then deletes. A key already present is not logged: its bits
// are on disk through an earlier record or a checkpoint, or came from a
// peer. Under --fsync always the reply waits for the log's end as it is
// after the add (w.syncLog, w.syncPos), which covers the records of any concurrent
// add whose bits this one found set.
//
// keys are slices of the frame in hand; the worker's scratch holds
// nothing after the call.
func addLogged(w *worker, f *filter.Filter, st *store.Store, keys [][]byte, bits []byte) int {
	st.BeginAdd()
	fresh := 0
	if f.Fingerprint().Layout == filter.Classic {
		fresh = logAndAddKeys(w, f, st, keys, bits)
	} else {
		fresh = logAndAddHashes(w, f, st, keys, bits)
	}
	st.EndAdd()
	if l := st.Log(); l.Policy() == store.FsyncAlways {
		w.syncLog, w.syncPos = l, l.End()
	}
	return fresh
}

// logAndAddHashes is addLogged for the blocked layout: each key is hashed
// once, and its hash is its log record.
func logAndAddHashes(w *worker, f *filter.Filter, st *store.Store, keys [][]byte, bits []byte) int {
	hs, missing := w.hashes[:0], w.missing[:0]
	for _, key := range keys {
		h := f.KeyHash(key)
		hs = append(hs, h)
		if !f.HasHash(h) {
			missing = append(missing, h)
		}
	}
	if len(missing) > 0 {
		st.Log().AppendHashes(missing)
	}
	fresh := 0
	for i, h := range hs {
		if f.AddHash(h) {
			bits[i/8] |= 1 << (i % 8)
			fresh++
		}
	}
	w.hashes, w.missing = hs, missing
	return fresh
}

// logAndAddKeys is addLogged for the classic layout, which places keys by
// their bytes: the keys are logged.
func logAndAddKeys(w *worker, f *filter.Filter, st *store.Store, keys [][]byte, bits []byte) int {
	missing := w.newKeys[:0]
	for _, key := range keys {
		if !f.Has(key) {
			missing = append(missing, key)
		}
	}
	if len(missing) > 0 {
		st.Log().AppendKeys(missing)
	}
	fresh := 0
	for i, key := range keys {
		if f.Add(key) {
			bits[i/8] |= 1 << (i % 8)
			fresh++
		}
	}
	clear(missing) // slices of a frame about to be reused
	w.newKeys = missing[:0]
	return fresh
}
