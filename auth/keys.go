package auth

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the size of a cluster key.
const KeySize = 32

// Key is a cluster key: 32 random bytes, written in base64.
type Key [KeySize]byte

// ErrKey reports a key, or a key file, that cannot be used.
var ErrKey = errors.New("auth: bad cluster key")

// Generate returns a new random key.
func Generate() (Key, error) {
	var k Key
	_, err := rand.Read(k[:])
	return k, err
}

// String returns the key in base64, as key files hold it.
func (k Key) String() string { return base64.StdEncoding.EncodeToString(k[:]) }

// ParseKey reads one key in base64.
func ParseKey(s string) (Key, error) {
	var k Key
	s = strings.TrimSpace(s)
	// The decoder skips line breaks inside its input; a key is one word,
	// written one way.
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != KeySize || strings.ContainsAny(s, "\r\n") {
		return k, fmt.Errorf("%w: want %d bytes in base64 (rmbd keygen makes one)", ErrKey, KeySize)
	}
	copy(k[:], b)
	if k == (Key{}) {
		return k, fmt.Errorf("%w: all zeros", ErrKey)
	}
	return k, nil
}

// ParseKeys reads a key file: one key per line, the first signs and all
// verify; blank lines and lines starting with # are skipped.
func ParseKeys(text []byte) ([]Key, error) {
	var keys []Key
	sc := bufio.NewScanner(bytes.NewReader(text))
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		k, err := ParseKey(s)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		keys = append(keys, k)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no key in it", ErrKey)
	}
	return keys, nil
}

// Keyring is a cluster's keys: the first signs, every one verifies, so
// that a key can be rotated without a moment where two nodes cannot talk.
// Each key is used only through keys derived from it, one per use.
type Keyring struct {
	keys []derived
}

// derived is what one cluster key gives.
type derived struct {
	id         uint32      // names the key in sealed frames
	frames     cipher.AEAD // AES-256-GCM: tags of sealed frames
	memberlist []byte      // memberlist's own encryption key
}

// NewKeyring derives what keys are used for. It refuses duplicates.
func NewKeyring(keys []Key) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no key", ErrKey)
	}
	r := &Keyring{}
	for i, k := range keys {
		if k == (Key{}) {
			return nil, fmt.Errorf("%w: key %d is all zeros", ErrKey, i+1)
		}
		d, err := derive(k)
		if err != nil {
			return nil, err
		}
		for _, o := range r.keys {
			if o.id == d.id {
				return nil, fmt.Errorf("%w: key %d is given twice", ErrKey, i+1)
			}
		}
		r.keys = append(r.keys, d)
	}
	return r, nil
}

func derive(k Key) (derived, error) {
	sub := func(use string) []byte {
		b, _ := hkdf.Key(sha256.New, k[:], nil, "rmbd "+use, 32) // cannot fail for 32 bytes
		return b
	}
	block, err := aes.NewCipher(sub("sealed frames"))
	if err != nil {
		return derived{}, err
	}
	// Nonces are a sender id and a sequence, 16 bytes: unique as long as
	// 64-bit random sender ids are, and no counter need be shared.
	aead, err := cipher.NewGCMWithNonceSize(block, nonceSize)
	if err != nil {
		return derived{}, err
	}
	return derived{id: binary.BigEndian.Uint32(sub("key id")), frames: aead, memberlist: sub("memberlist")}, nil
}

// nonceSize is the sealed frames' nonce: sender id and sequence.
const nonceSize = 16

// MemberlistKeys returns the keys memberlist encrypts gossip with, the
// signing one first.
func (r *Keyring) MemberlistKeys() [][]byte {
	out := make([][]byte, len(r.keys))
	for i, d := range r.keys {
		out[i] = d.memberlist
	}
	return out
}

// Len returns the number of keys.
func (r *Keyring) Len() int { return len(r.keys) }

// IDs returns the keys' ids, the signing one first: logs name keys by them.
func (r *Keyring) IDs() []uint32 {
	out := make([]uint32, len(r.keys))
	for i, d := range r.keys {
		out[i] = d.id
	}
	return out
}

func (r *Keyring) signing() *derived { return &r.keys[0] }

func (r *Keyring) byID(id uint32) *derived {
	for i := range r.keys {
		if r.keys[i].id == id {
			return &r.keys[i]
		}
	}
	return nil
}
