package gossip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/wire"
)

// The catalog's bytes: what nodes swap (inside memberlist's push/pull
// state) and what the data directory keeps. Big-endian throughout.
//
//	catalog   count:uint16, then count entries; with count's top bit
//	          set (grows), each version ends in expansion:uint16
//	          (1..MaxExpansion: it grows; 0xffff: it does not, NONSCALING;
//	          0: a filter made before filters grew). A catalog without
//	          growing or NONSCALING filters leaves the bit clear, as nodes
//	          that know no growing filter wrote it. With count's bit 14
//	          set (expiries), each entry ends in its deadlines; a catalog
//	          without one leaves the bit clear, as nodes that knew no
//	          deadline wrote it (and such nodes refuse a catalog with it
//	          set: too many entries). With count's bit 13 set
//	          (extensions), each version ends, after any expansion, in its
//	          extensions; a catalog whose versions have none leaves the bit
//	          clear. (Bit 12 is the count's own: 4096 entries.)
//	entry     name (length:uint8 1..200, wire.ValidFilterName), floor:uint64,
//	          versions:uint8, then each version,
//	          drops:uint8, then each drop;
//	          with expiries: expiries:uint8, then each expiry
//	version   gen:uint64, created:int64 (Unix ms), origin (length:uint8, bytes),
//	          fingerprint (filter.FingerprintSize bytes), capacity:uint64,
//	          fp rate:float64 bits
//	drop      gen:uint64, at:int64 (Unix ms), kind:uint8 (0 every generation
//	          up to gen, 1 one version), with kind 1: created:int64, origin
//	expiry    gen:uint64, deadline:int64 (Unix ms; 0: none, PERSIST),
//	          set:int64 (Unix ms), by (length:uint8, bytes)
//	extensions length:uint8, then fields in increasing tag order, each
//	          tag:uint8, length:uint8, value; a reader refuses a tag it
//	          does not know (a newer rmbd's field, which it could not
//	          honour). Tags: 1 window — window:uint64 (ms), slices:uint16;
//	          2 replicas — replicas:uint8 (1..255; absent: every member).

// Bounds of the catalog's bytes.
const (
	MaxCatalogEntries  = 4096 // entries in one catalog message
	MaxVersionsPerName = 64   // live versions of one name (conflicts)
	MaxDropsPerName    = 64   // tombstones of one name
	MaxExpiriesPerName = 64   // deadlines of one name (one per generation once merged)
)

// ErrCatalog reports catalog bytes that do not decode.
var ErrCatalog = errors.New("gossip: bad catalog bytes")

// AppendCatalog appends entries as a catalog message.
func AppendCatalog(dst []byte, entries []Entry) ([]byte, error) {
	if len(entries) > MaxCatalogEntries {
		return dst, fmt.Errorf("%w: %d entries, at most %d", ErrCatalog, len(entries), MaxCatalogEntries)
	}
	start := len(dst)
	count, grows, expires, exts := uint16(len(entries)), anyGrows(entries), anyExpiry(entries), anyExt(entries)
	if grows {
		count |= growsBit
	}
	if exts {
		count |= extsBit
	}
	if expires {
		count |= expiresBit
	}
	dst = binary.BigEndian.AppendUint16(dst, count)
	for _, e := range entries {
		var err error
		if dst, err = appendEntry(dst, e, grows, exts); err == nil && expires {
			dst, err = appendExpiries(dst, e.Expiries)
		}
		if err != nil {
			return dst[:start], err
		}
	}
	return dst, nil
}

// expiresBit, set in a catalog's count, says its entries end in their
// deadlines.
const expiresBit = 1 << 14

func anyExpiry(entries []Entry) bool {
	for _, e := range entries {
		if len(e.Expiries) > 0 {
			return true
		}
	}
	return false
}

func appendExpiries(dst []byte, xs []Expiry) ([]byte, error) {
	if len(xs) > MaxExpiriesPerName {
		return dst, fmt.Errorf("%w: %d expiries, at most %d", ErrCatalog, len(xs), MaxExpiriesPerName)
	}
	dst = append(dst, byte(len(xs)))
	for _, x := range xs {
		if len(x.By) > math.MaxUint8 {
			return dst, fmt.Errorf("%w: setter of %d bytes", ErrCatalog, len(x.By))
		}
		dst = binary.BigEndian.AppendUint64(dst, x.Gen)
		dst = binary.BigEndian.AppendUint64(dst, uint64(x.Deadline))
		dst = binary.BigEndian.AppendUint64(dst, uint64(x.Set))
		dst = appendString(dst, x.By)
	}
	return dst, nil
}

// expiries reads an entry's deadlines.
func (r *catReader) expiries() []Expiry {
	n := r.u8("expiry count")
	if n > MaxExpiriesPerName {
		r.fail("too many expiries")
	}
	var out []Expiry
	for i := 0; i < n && r.Err() == nil; i++ {
		x := Expiry{Gen: r.u64("expiry gen"), Deadline: int64(r.u64("deadline")), Set: int64(r.u64("expiry set")), By: r.str("expiry setter")}
		if r.Err() == nil && (x.Gen == 0 || x.Deadline < 0) {
			r.fail("expiry")
		}
		out = append(out, x)
	}
	return out
}

// anyGrows reports whether some version of entries grows or is
// NONSCALING: whether the catalog needs the expansion field.
func anyGrows(entries []Entry) bool {
	for _, e := range entries {
		for _, v := range e.Versions {
			if v.Def.Grows() || v.Def.NonScaling {
				return true
			}
		}
	}
	return false
}

// nonScalingMark is the expansion field of a NONSCALING version.
const nonScalingMark = 0xffff

// growsBit, set in a catalog's count, says its versions carry an
// expansion.
const growsBit = 1 << 15

// extsBit, set in a catalog's count, says its versions end in their
// extensions: the fields the count's bits had no room for.
const extsBit = 1 << 13

// Extension tags.
const (
	extWindow    = 1  // window:uint64 (ms), slices:uint16
	extWindowLen = 10 // its value's length
	extReplicas  = 2  // replicas:uint8
)

// anyExt reports whether some version of entries has an extension: is
// windowed or placed.
func anyExt(entries []Entry) bool {
	for _, e := range entries {
		for _, v := range e.Versions {
			if v.Def.Windowed() || v.Def.Replicas > 0 {
				return true
			}
		}
	}
	return false
}

// appendExts appends d's extensions.
func appendExts(dst []byte, d CatalogDef) []byte {
	at := len(dst)
	dst = append(dst, 0)
	if d.Windowed() {
		dst = append(dst, extWindow, extWindowLen)
		dst = binary.BigEndian.AppendUint64(dst, d.Window)
		dst = binary.BigEndian.AppendUint16(dst, d.Slices)
	}
	if d.Replicas > 0 {
		dst = append(dst, extReplicas, 1, d.Replicas)
	}
	dst[at] = byte(len(dst) - at - 1)
	return dst
}

// exts reads a version's extensions into d.
func (r *catReader) exts(d *CatalogDef) {
	b := r.bytes(r.u8("extensions length"), "extensions")
	last := 0
	for len(b) > 0 && r.Err() == nil {
		if len(b) < 2 || len(b) < 2+int(b[1]) {
			r.fail("extension: short")
			return
		}
		tag, val := int(b[0]), b[2:2+int(b[1])]
		switch {
		case tag <= last:
			r.fail("extensions out of order")
		case tag == extWindow && len(val) == extWindowLen:
			d.Window, d.Slices = binary.BigEndian.Uint64(val), binary.BigEndian.Uint16(val[8:])
			if !d.Windowed() {
				r.fail("window of 0 slices")
			}
		case tag == extReplicas && len(val) == 1:
			if d.Replicas = val[0]; d.Replicas == 0 {
				r.fail("placed on 0 replicas")
			}
		default:
			r.fail(fmt.Sprintf("extension %d of %d bytes (a newer rmbd's field?)", tag, len(val)))
		}
		last, b = tag, b[2+len(val):]
	}
}

func appendEntry(dst []byte, e Entry, grows, exts bool) ([]byte, error) {
	switch {
	case !wire.ValidFilterName(e.Name):
		return dst, fmt.Errorf("%w: filter name %q", ErrCatalog, e.Name)
	case len(e.Versions) > MaxVersionsPerName || len(e.Drops) > MaxDropsPerName:
		return dst, fmt.Errorf("%w: %q has %d versions and %d drops (at most %d and %d)",
			ErrCatalog, e.Name, len(e.Versions), len(e.Drops), MaxVersionsPerName, MaxDropsPerName)
	}
	dst = appendString(dst, e.Name)
	dst = binary.BigEndian.AppendUint64(dst, e.Floor)
	dst = append(dst, byte(len(e.Versions)))
	for _, v := range e.Versions {
		if len(v.Origin) > math.MaxUint8 {
			return dst, fmt.Errorf("%w: origin of %d bytes", ErrCatalog, len(v.Origin))
		}
		dst = binary.BigEndian.AppendUint64(dst, v.Gen)
		dst = binary.BigEndian.AppendUint64(dst, uint64(v.Created))
		dst = appendString(dst, v.Origin)
		dst, _ = v.Def.FP.AppendBinary(dst)
		dst = binary.BigEndian.AppendUint64(dst, v.Def.Capacity)
		dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(v.Def.FPRate))
		if grows {
			x := uint16(v.Def.Expansion)
			switch {
			case v.Def.Expansion > MaxExpansion, v.Def.NonScaling && v.Def.Expansion != 0:
				return dst, fmt.Errorf("%w: expansion %d (NONSCALING %v), at most %d", ErrCatalog, v.Def.Expansion, v.Def.NonScaling, MaxExpansion)
			case v.Def.NonScaling:
				x = nonScalingMark
			}
			dst = binary.BigEndian.AppendUint16(dst, x)
		}
		if !checkWindowDef(v.Def) {
			return dst, fmt.Errorf("%w: window of %d ms in %d slices", ErrCatalog, v.Def.Window, v.Def.Slices)
		}
		if exts {
			dst = appendExts(dst, v.Def)
		}
	}
	dst = append(dst, byte(len(e.Drops)))
	for _, t := range e.Drops {
		dst = binary.BigEndian.AppendUint64(dst, t.Gen)
		dst = binary.BigEndian.AppendUint64(dst, uint64(t.At))
		if t.Version == (ID{}) {
			dst = append(dst, 0)
			continue
		}
		if len(t.Version.Origin) > math.MaxUint8 {
			return dst, fmt.Errorf("%w: origin of %d bytes", ErrCatalog, len(t.Version.Origin))
		}
		dst = append(dst, 1)
		dst = binary.BigEndian.AppendUint64(dst, uint64(t.Version.Created))
		dst = appendString(dst, t.Version.Origin)
	}
	return dst, nil
}

func appendString(dst []byte, s string) []byte {
	return append(append(dst, byte(len(s))), s...)
}

// catReader is a wire.Cursor over catalog bytes whose failures say what
// was being read and where: "<ErrCatalog>: <what> at offset N".
type catReader struct{ wire.Cursor }

func (r *catReader) fail(what string) {
	if r.Err() == nil {
		r.Fail(fmt.Errorf("%w: %s at offset %d", ErrCatalog, what, r.Offset()))
	}
}

// bytes reads n bytes, failing as what is short when fewer are left.
func (r *catReader) bytes(n int, what string) []byte {
	if n < 0 || n > r.Left() {
		r.fail(what + ": short")
		return nil
	}
	return r.Bytes(n)
}

func (r *catReader) u8(what string) int {
	if b := r.bytes(1, what); b != nil {
		return int(b[0])
	}
	return 0
}

func (r *catReader) u64(what string) uint64 {
	if b := r.bytes(8, what); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (r *catReader) str(what string) string { return string(r.bytes(r.u8(what), what)) }

// DecodeCatalog reads a catalog message. Every bound is checked before
// anything is allocated for it; a name, a fingerprint or a rate out of
// range fails the whole message.
func DecodeCatalog(b []byte) ([]Entry, error) {
	r := catReader{wire.NewCursor(b, ErrCatalog)}
	n, grows, expires, exts := 0, false, false, false
	if h := r.bytes(2, "entry count"); h != nil {
		n = int(binary.BigEndian.Uint16(h))
		n, grows, expires, exts = n&^(growsBit|expiresBit|extsBit), n&growsBit != 0, n&expiresBit != 0, n&extsBit != 0
	}
	if n > MaxCatalogEntries {
		r.fail("too many entries")
	}
	var out []Entry
	for i := 0; i < n && r.Err() == nil; i++ {
		e := r.entry(grows, exts)
		if expires {
			e.Expiries = r.expiries()
		}
		out = append(out, e)
	}
	if r.Err() == nil && r.Left() != 0 {
		r.fail("trailing bytes")
	}
	if r.Err() == nil && grows && !anyGrows(out) {
		r.fail("growing catalog without a growing filter") // one encoding
	}
	if r.Err() == nil && exts && !anyExt(out) {
		r.fail("catalog of extensions without one") // one encoding
	}
	if r.Err() == nil && expires && !anyExpiry(out) {
		r.fail("catalog of expiries without one")
	}
	if r.Err() != nil {
		return nil, r.Err()
	}
	return out, nil
}

func (r *catReader) entry(grows, exts bool) Entry {
	e := Entry{Name: r.str("name")}
	if r.Err() == nil && !wire.ValidFilterName(e.Name) {
		r.fail("filter name")
	}
	e.Floor = r.u64("floor")
	nv := r.u8("version count")
	if nv > MaxVersionsPerName {
		r.fail("too many versions")
	}
	for i := 0; i < nv && r.Err() == nil; i++ {
		v := Version{Gen: r.u64("gen"), Created: int64(r.u64("created")), Origin: r.str("origin")}
		fp, err := filter.DecodeFingerprint(r.bytes(filter.FingerprintSize, "fingerprint"))
		if r.Err() == nil && err != nil {
			r.fail("fingerprint")
		}
		v.Def = CatalogDef{FP: fp, Capacity: r.u64("capacity"), FPRate: math.Float64frombits(r.u64("fp rate"))}
		if grows {
			if b := r.bytes(2, "expansion"); b != nil {
				switch x := binary.BigEndian.Uint16(b); x {
				case nonScalingMark:
					v.Def.NonScaling = true
				default:
					v.Def.Expansion = uint32(x)
				}
			}
		}
		if exts {
			r.exts(&v.Def)
			if r.Err() == nil && (!checkWindowDef(v.Def) || v.Def.Windowed() && (fp.Layout != filter.Blocked || v.Def.Replicas > 0)) {
				r.fail("window")
			}
		}
		if r.Err() == nil && (v.Gen == 0 || !(v.Def.FPRate >= 0 && v.Def.FPRate < 1)) {
			r.fail("version")
		}
		if r.Err() == nil && v.Def.Grows() && (v.Def.Expansion > MaxExpansion || fp.Layout != filter.Blocked ||
			v.Def.Capacity == 0 || v.Def.FPRate == 0) {
			r.fail("growing version")
		}
		e.Versions = append(e.Versions, v)
	}
	nd := r.u8("drop count")
	if nd > MaxDropsPerName {
		r.fail("too many drops")
	}
	for i := 0; i < nd && r.Err() == nil; i++ {
		t := Tombstone{Gen: r.u64("drop gen"), At: int64(r.u64("drop time"))}
		switch r.u8("drop kind") {
		case 0:
		case 1:
			t.Version = ID{Gen: t.Gen, Created: int64(r.u64("dropped version")), Origin: r.str("dropped origin")}
		default:
			r.fail("drop kind")
		}
		if r.Err() == nil && t.Gen == 0 {
			r.fail("drop of generation 0")
		}
		e.Drops = append(e.Drops, t)
	}
	return e
}
