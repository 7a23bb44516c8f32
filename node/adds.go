package node

import (
	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/store"
)

// addLogged adds keys to a node with a data directory and sets bit i of
// bits for each key that changed the filter (a test-and-set); it returns
// how many did.
//
// The keys not yet in the filter are logged before any is applied, inside
// the store's add barrier, so that a checkpoint never copies rows whose
// records it then deletes. A key already present is not logged: its bits
// are on disk through an earlier record or a checkpoint, or came from a
// peer. Under --fsync always the reply waits for the log's end as it is
// after the add (w.syncPos), which covers the records of any concurrent
// add whose bits this one found set.
//
// keys are slices of the frame in hand; the worker's scratch holds
// nothing after the call.
func (n *Node) addLogged(w *worker, keys [][]byte, bits []byte) int {
	n.st.BeginAdd()
	fresh := 0
	if n.f.Fingerprint().Layout == filter.Classic {
		fresh = n.logAndAddKeys(w, keys, bits)
	} else {
		fresh = n.logAndAddHashes(w, keys, bits)
	}
	n.st.EndAdd()
	if l := n.st.Log(); l.Policy() == store.FsyncAlways {
		w.syncPos = l.End()
	}
	return fresh
}

// logAndAddHashes is addLogged for the blocked layout: each key is hashed
// once, and its hash is its log record.
func (n *Node) logAndAddHashes(w *worker, keys [][]byte, bits []byte) int {
	hs, missing := w.hashes[:0], w.missing[:0]
	for _, key := range keys {
		h := n.f.KeyHash(key)
		hs = append(hs, h)
		if !n.f.HasHash(h) {
			missing = append(missing, h)
		}
	}
	if len(missing) > 0 {
		n.st.Log().AppendHashes(missing)
	}
	fresh := 0
	for i, h := range hs {
		if n.f.AddHash(h) {
			bits[i/8] |= 1 << (i % 8)
			fresh++
		}
	}
	w.hashes, w.missing = hs, missing
	return fresh
}

// logAndAddKeys is addLogged for the classic layout, which places keys by
// their bytes: the keys are logged.
func (n *Node) logAndAddKeys(w *worker, keys [][]byte, bits []byte) int {
	missing := w.newKeys[:0]
	for _, key := range keys {
		if !n.f.Has(key) {
			missing = append(missing, key)
		}
	}
	if len(missing) > 0 {
		n.st.Log().AppendKeys(missing)
	}
	fresh := 0
	for i, key := range keys {
		if n.f.Add(key) {
			bits[i/8] |= 1 << (i % 8)
			fresh++
		}
	}
	clear(missing) // slices of a frame about to be reused
	w.newKeys = missing[:0]
	return fresh
}
