package filter

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// ErrLayout reports a layout the package does not know.
var ErrLayout = errors.New("filter: unknown layout")

// Config sizes a filter. The zero value is not valid; start from
// DefaultConfig.
type Config struct {
	// Layout is Classic or Blocked. Classic ignores every other field.
	Layout Layout
	// Capacity is the number of distinct keys the filter is sized for.
	Capacity uint64
	// FPRate is the false-positive rate wanted at Capacity keys, in (0,1).
	FPRate float64
	// Seed seeds the blocked layout's hash. Nodes must share it to merge.
	Seed uint64
	// MaxBytes refuses filters whose bits would take more memory than this.
	MaxBytes uint64
}

// DefaultConfig is a blocked filter for one million keys at 1%, at most
// 4 GiB.
func DefaultConfig() Config {
	return Config{
		Layout:   Blocked,
		Capacity: 1_000_000,
		FPRate:   0.01,
		MaxBytes: 4 << 30,
	}
}

// Filter is a row-oriented Bloom filter. See the package doc.
type Filter struct {
	fp   Fingerprint
	rows uint64
	wpr  uint64 // words per row
	k    int
	seed uint64
	// words hold the bits, 64-byte aligned so that a blocked row is one
	// cache line (see the package doc for why they are not a
	// bitset.BitSet); written under stripes' locks, read atomically
	// (write.go).
	words   []uint64
	mem     *memory // how to give the words back
	stripes []sync.Mutex
	// With counting (CountBits), setBits is how many bits are set.
	counting bool
	setBits  atomic.Uint64

	// Change tracking (changes.go): marks has 4 bits per row, 16 to a
	// word, set (atomically) when a bit of the row flips; dirty one bit
	// per block of 64 rows, set after a mark.
	marks []uint64
	dirty []uint64

	// mu guards gen and the stamps; see changes.go.
	mu          sync.Mutex
	gen         uint64
	lastChanged uint64   // the last generation that stamped a row
	blockStamps []uint64 // per block of 64 rows: the generation of its last change
	originLog   originLog
}

// New returns an empty filter shaped by cfg.
func New(cfg Config) (*Filter, error) {
	switch cfg.Layout {
	case Classic:
		return NewClassic(), nil
	case Blocked:
	default:
		return nil, fmt.Errorf("%w %d", ErrLayout, cfg.Layout)
	}
	fp, err := BlockedFingerprint(cfg)
	if err != nil {
		return nil, err
	}
	return newFilter(fp), nil
}

// BlockedFingerprint is the fingerprint of the blocked filter cfg sizes,
// without making the filter: what New would make.
func BlockedFingerprint(cfg Config) (Fingerprint, error) {
	rows, k, err := SizeBlocked(cfg.Capacity, cfg.FPRate)
	if err != nil {
		return Fingerprint{}, err
	}
	if size := rows * BlockedRowBits / 8; cfg.MaxBytes > 0 && size > cfg.MaxBytes {
		return Fingerprint{}, fmt.Errorf("%w: %d keys at rate %v need %d bytes, over the limit of %d",
			ErrTooLarge, cfg.Capacity, cfg.FPRate, size, cfg.MaxBytes)
	}
	return Fingerprint{
		Layout: Blocked, Hash: XXH3, K: uint8(k), Version: BlockedVersion,
		RowBits: BlockedRowBits, Rows: uint32(rows), Seed: cfg.Seed,
	}, nil
}

// NewClassic returns an empty classic filter: 5 rows × 400 bits, the
// original rmbd's.
func NewClassic() *Filter {
	return newFilter(Fingerprint{
		Layout: Classic, Hash: FNV1a32, K: ClassicRows, Version: ClassicVersion,
		RowBits: ClassicRowBits, Rows: ClassicRows,
	})
}

// NewFromFingerprint returns an empty filter with fingerprint fp, so that a
// node can build a filter able to merge with a peer's. It refuses
// fingerprints no layout produces and filters over maxBytes (0 means
// DefaultConfig's MaxBytes): a fingerprint may come off the wire.
func NewFromFingerprint(fp Fingerprint, maxBytes uint64) (*Filter, error) {
	if err := fp.validate(); err != nil {
		return nil, err
	}
	if maxBytes == 0 {
		maxBytes = DefaultConfig().MaxBytes
	}
	if size := fp.SizeBytes(); size > maxBytes {
		return nil, fmt.Errorf("%w: %v needs %d bytes, over the limit of %d", ErrTooLarge, fp, size, maxBytes)
	}
	return newFilter(fp), nil
}

func newFilter(fp Fingerprint) *Filter {
	rows := uint64(fp.Rows)
	wpr := (uint64(fp.RowBits) + 63) / 64
	words, release := allocWords(rows * wpr)
	blocks := (rows + 63) / 64
	f := &Filter{
		fp:          fp,
		rows:        rows,
		wpr:         wpr,
		k:           int(fp.K),
		seed:        fp.Seed,
		words:       words,
		mem:         &memory{release: release},
		stripes:     newStripes(rows),
		marks:       newMarks(rows),
		dirty:       make([]uint64, (blocks+63)/64),
		blockStamps: make([]uint64, blocks),
	}
	// Words mapped from the OS are not the garbage collector's: give them
	// back when the filter goes.
	runtime.AddCleanup(f, func(m *memory) { m.free() }, f.mem)
	return f
}

// memory is what gives a filter's words back, once.
type memory struct {
	mu      sync.Mutex
	release func()
}

func (m *memory) free() { m.swap(nil) }

// swap gives the current words back and keeps release for the next ones.
func (m *memory) swap(release func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.release != nil {
		m.release()
	}
	m.release = release
}

// alignedWords allocates n zero words starting on a 64-byte boundary, so
// that each blocked row is exactly one cache line.
func alignedWords(n uint64) []uint64 {
	buf := make([]uint64, n+7)
	off := (64 - uintptr(unsafe.Pointer(unsafe.SliceData(buf)))%64) % 64 / 8
	return buf[off : off+uintptr(n) : off+uintptr(n)]
}

// Adopt makes words, which must hold as many words as the filter and
// start on a 64-byte boundary, the filter's bits, and gives the old ones
// back: a filter's image mapped from disk becomes the filter without a
// copy. release gives words back in turn. Never call it on a filter that
// is being served.
func (f *Filter) Adopt(words []uint64, release func()) error {
	if len(words) != len(f.words) || uintptr(unsafe.Pointer(unsafe.SliceData(words)))%64 != 0 {
		return fmt.Errorf("%w: %d words at %p for a filter of %d", ErrRowLength, len(words), unsafe.SliceData(words), len(f.words))
	}
	f.mem.swap(release)
	f.words = words
	f.counting = false // CountBits again once adopted
	f.noteLoaded()
	return nil
}

// Release gives the filter's memory back; the filter must not be used
// after it.
func (f *Filter) Release() {
	f.mem.free()
	f.words = nil
}

// Fingerprint returns what identifies the filter's bit positions.
func (f *Filter) Fingerprint() Fingerprint { return f.fp }

// Rows returns R, the number of rows.
func (f *Filter) Rows() uint64 { return f.rows }

// RowBits returns W, the number of bits in a row.
func (f *Filter) RowBits() int { return int(f.fp.RowBits) }

// RowBytes returns the size of one row in CopyRows/MergeRows form.
func (f *Filter) RowBytes() int { return int(f.fp.RowBits) / 8 }

// K returns the number of bits set per key.
func (f *Filter) K() int { return f.k }

// SizeBytes returns the memory held by the filter's bits.
func (f *Filter) SizeBytes() uint64 { return uint64(len(f.words)) * 8 }

// Add inserts key and reports whether any bit changed, i.e. whether the key
// was possibly new. It never allocates.
func (f *Filter) Add(key []byte) bool {
	if f.fp.Layout == Classic {
		return f.addClassic(key)
	}
	return f.AddHash(blockedHash(key, f.seed))
}

// Has reports whether key may have been added: false means certainly not.
// It never allocates.
func (f *Filter) Has(key []byte) bool {
	if f.fp.Layout == Classic {
		return f.hasClassic(key)
	}
	return f.HasHash(blockedHash(key, f.seed))
}

// KeyHash returns the 64-bit hash by which the blocked layout places key.
// AddHash and HasHash take it, so that a key logged by its hash is hashed
// once. The classic layout places keys by their bytes and has no such hash.
func (f *Filter) KeyHash(key []byte) uint64 { return blockedHash(key, f.seed) }

// AddHash is Add for a blocked filter, given the key's KeyHash.
func (f *Filter) AddHash(h uint64) bool {
	r, row, masks := f.locate(h)
	if missing(row, &masks) == 0 {
		return false
	}
	mu := f.stripe(r)
	mu.Lock()
	n := orMasks(row, &masks, f.counting)
	mu.Unlock()
	if n == 0 {
		return false
	}
	f.counted(n)
	f.markChanged(r, true)
	return true
}

// HasHash is Has for a blocked filter, given the key's KeyHash.
func (f *Filter) HasHash(h uint64) bool {
	r := blockedRow(h, f.rows)
	row := (*[8]uint64)(f.words[r*8 : r*8+8])
	// Testing bit by bit and stopping at the first clear one is measurably
	// faster here than Add's branchless test, most of all in DRAM.
	ps := newPositions(h)
	for i := range f.k {
		p := ps.next(i)
		if atomic.LoadUint64(&row[p>>6])&(1<<(p&63)) == 0 {
			return false
		}
	}
	return true
}

// locate returns the row of hash h in the blocked layout and, per word of
// the row, the bits the key sets.
func (f *Filter) locate(h uint64) (r uint64, row *[8]uint64, masks [8]uint64) {
	r = blockedRow(h, f.rows)
	row = (*[8]uint64)(f.words[r*8 : r*8+8])
	ps := newPositions(h)
	for i := range f.k {
		p := ps.next(i)
		masks[p>>6] |= 1 << (p & 63)
	}
	return r, row, masks
}

// missing returns the bits of masks not set in row: eight loads of one
// cache line and no branch per word.
func missing(row *[8]uint64, masks *[8]uint64) uint64 {
	return masks[0]&^atomic.LoadUint64(&row[0]) | masks[1]&^atomic.LoadUint64(&row[1]) |
		masks[2]&^atomic.LoadUint64(&row[2]) | masks[3]&^atomic.LoadUint64(&row[3]) |
		masks[4]&^atomic.LoadUint64(&row[4]) | masks[5]&^atomic.LoadUint64(&row[5]) |
		masks[6]&^atomic.LoadUint64(&row[6]) | masks[7]&^atomic.LoadUint64(&row[7])
}

func (f *Filter) addClassic(key []byte) bool {
	var changed uint16
	n := 0
	mu := f.stripe(0) // the classic rows fit one stripe
	mu.Lock()
	for r := range uint64(ClassicRows) {
		c := uint64(ClassicColumn(key, int(r)))
		if orWord(&f.words[r*f.wpr+c/64], 1<<(c%64)) > 0 {
			changed |= 1 << r
			n++
		}
	}
	mu.Unlock()
	if changed != 0 {
		f.counted(n)
		f.markRows(0, changed, true)
	}
	return changed != 0
}

func (f *Filter) hasClassic(key []byte) bool {
	for r := range uint64(ClassicRows) {
		c := uint64(ClassicColumn(key, int(r)))
		if atomic.LoadUint64(&f.words[r*f.wpr+c/64])&(1<<(c%64)) == 0 {
			return false
		}
	}
	return true
}
