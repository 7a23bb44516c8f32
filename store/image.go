package store

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os"
	"unsafe"

	"github.com/rmbd/rmbd/filter"
	"github.com/zeebo/xxh3"
)

// Image checkpoints: a full checkpoint of a dense blocked filter written as
// the filter's own words, so that a restart maps it instead of reading it
// (no copy, no fresh memory to fill). Layout in docs/FORMAT.md.
const (
	ckptImage uint8 = 2
	// imageOffset is where the words start: a page boundary, to map them.
	imageOffset = 4096
	// imageBlock is the bytes each checksum covers.
	imageBlock = 64 << 10
)

// littleEndian reports whether the machine's words are laid out as the
// image's: only then is a mapped image the filter as is.
func littleEndian() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}

// wantImage reports whether the full checkpoint of f should be an image:
// a blocked filter with at least half its rows set (a sparse one is
// smaller as blocks of runs).
func wantImage(f *filter.Filter) bool {
	if f.Fingerprint().Layout != filter.Blocked {
		return false
	}
	set := uint64(0)
	for r := range f.ChangedRuns(0) {
		set += r.Count
	}
	return set*2 >= f.Rows()
}

// imageBytes is the size of f's image.
func imageBytes(fp filter.Fingerprint) int64 { return int64(fp.Rows) * int64(fp.RowBits/8) }

// writeImage writes checkpoint h as the image of f: header, padding to
// imageOffset, every row, a checksum per imageBlock bytes, the trailer.
func writeImage(fsys FS, dir string, h ckptHeader, f *filter.Filter) (rows uint64, size int64, err error) {
	h.kind = ckptImage
	t, err := createTemp(fsys, dir, checkpointName(h.seq))
	if err != nil {
		return 0, 0, err
	}
	bw := bufio.NewWriterSize(t, 1<<20)
	page := make([]byte, imageOffset) // the header, zero padded to a page
	copy(page, appendCkptHeader(nil, h))
	bw.Write(page)
	perBlock := uint64(imageBlock / f.RowBytes())
	var sums, buf []byte
	for first := uint64(0); first < f.Rows(); first += perBlock {
		n := min(perBlock, f.Rows()-first)
		buf, _ = f.CopyRows(buf[:0], first, n) // in range by construction
		bw.Write(buf)
		sums = binary.BigEndian.AppendUint64(sums, xxh3.Hash(buf))
	}
	bw.Write(sums)
	tr := append([]byte(ckptTrailerMagic), make([]byte, 16)...)
	binary.BigEndian.PutUint64(tr[8:], uint64(len(sums)/8))
	binary.BigEndian.PutUint64(tr[16:], f.Rows())
	bw.Write(binary.BigEndian.AppendUint64(tr, xxh3.Hash(tr)))
	if err := bw.Flush(); err != nil {
		t.abort()
		return 0, 0, err
	}
	if err := t.commit(); err != nil {
		return 0, 0, err
	}
	return f.Rows(), imageOffset + imageBytes(f.Fingerprint()) + int64(len(sums)) + ckptTrailerSize, nil
}

// loadImage checks the image checkpoint at path and puts its rows in f:
// as f's own words when adopt (f is empty) and the machine can map them,
// by OR-ing them in otherwise. The blocks that do not verify are left out
// (zero) and returned as damage.
func loadImage(fsys FS, path string, f *filter.Filter, adopt bool) (ckptRead, error) {
	fp := f.Fingerprint()
	st, err := fsys.Stat(path)
	if err != nil {
		return ckptRead{}, err
	}
	file, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return ckptRead{}, err
	}
	n := imageBytes(fp)
	blocks := (n + imageBlock - 1) / imageBlock
	head := make([]byte, ckptHeaderSize)
	tail := make([]byte, blocks*8+ckptTrailerSize)
	_, herr := file.ReadAt(head, 0)
	_, terr := file.ReadAt(tail, imageOffset+n)
	file.Close()
	h, at, err := decodeCkptHeader(head)
	switch {
	case herr != nil || err != nil:
		return ckptRead{}, &FileError{Path: path, Offset: int64(at), Err: cmpErr(err, damaged("header"))}
	case h.fp != fp:
		return ckptRead{}, &FileError{Path: path, Offset: 10, Err: fmt.Errorf("%w: rows of %v, not %v", ErrMismatch, h.fp, fp)}
	case st.Size() != imageOffset+n+int64(len(tail)) || terr != nil:
		return ckptRead{header: h}, &FileError{Path: path, Offset: st.Size(), Err: damaged(fmt.Sprintf("%d bytes, an image of this filter takes %d", st.Size(), imageOffset+n+int64(len(tail))))}
	}
	res := ckptRead{header: h}
	if tr, ok := decodeTrailer(tail[len(tail)-ckptTrailerSize:]); !ok || tr.blocks != uint64(blocks) || tr.rows != f.Rows() {
		res.damage = append(res.damage, int(st.Size()))
	}
	img, unmap, mapped, err := mapPrivate(fsys, path, imageOffset, int(n))
	if err != nil {
		return res, err
	}
	for b := range blocks {
		block := img[b*imageBlock : min((b+1)*imageBlock, n)]
		if binary.BigEndian.Uint64(tail[b*8:]) != xxh3.Hash(block) {
			res.damage = append(res.damage, int(imageOffset+b*imageBlock))
			clear(block) // its rows are lost here; anti-entropy refills them
			continue
		}
		res.blocks++
		res.rows += uint64(len(block) / f.RowBytes())
	}
	if adopt && mapped && littleEndian() {
		words := unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(img))), n/8)
		if err := f.Adopt(words, unmap); err == nil {
			return res, nil
		}
	}
	defer unmap()
	return res, f.LoadRows(fp, 0, img)
}

func cmpErr(err, or error) error {
	if err != nil {
		return err
	}
	return or
}
