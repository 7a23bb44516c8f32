// Package auth authenticates the frames nodes of one cluster send each
// other, with the cluster's keys.
//
// A key file holds keys in base64, one per line: the first signs, every
// one verifies, so that a cluster rotates its key without a moment where
// two members cannot talk (add the new key everywhere, make it first
// everywhere, remove the old). Each key is used only through keys derived
// from it (HKDF-SHA256): one for the tags of sealed frames, one for
// memberlist's encryption of gossip, one to name the key.
//
// A sealed frame (wire.TypeSealed) carries a node-to-node frame whole,
// with the key's id, the sender's id, the sender's sequence number and a
// 16-byte tag: AES-256-GCM over every byte before it, with no plaintext,
// the nonce being the sender id and the sequence. Sender ids are random
// per process, so nonces never repeat. A receiver accepts each sender's
// sequence once, within a window of the newest it saw: a frame replayed,
// or too old, changes nothing.
//
//	ring, err := auth.NewKeyring(keys)
//	sealer, opener := auth.NewSealer(ring), auth.NewOpener(ring)
//	sealed, err := sealer.Seal(nil, rowSyncFrame)
//	s, err := opener.Open(sealed) // s.Inner is the row sync frame
package auth
